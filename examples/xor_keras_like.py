"""XOR with NetLens' Keras-like model: every epoch's parameters and every layer's outputs on
the four inputs are recorded in a run you can open with `netlens serve`.

    python examples/xor_keras_like.py        # a few seconds on a laptop CPU
"""

import numpy as np

import netlens as nl

x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([0, 1, 1, 0])

model = nl.Sequential(
    [nl.layers.Dense(3, activation="tanh"), nl.layers.Dense(1, activation="sigmoid")],
    input_shape=(2,),
)
model.compile(
    optimizer=nl.optimizers.Adam(learning_rate=0.05),
    loss="binary_crossentropy",
    metrics=["accuracy"],
)
model.summary()
history = model.fit(x, y, epochs=1500, batch_size=4, probe=(x, y), name="xor", tags=["example"])
print(f"accuracy {history.history['accuracy'][-1]:.2f}, loss {history.history['loss'][-1]:.4f}")
print("predictions:", model.predict(x).ravel().round(3))

# Fitting again continues the same run: epochs 1501 to 2000 are recorded after the others.
more = model.fit(x, y, epochs=500, batch_size=4, probe=(x, y), verbose=0)
print(f"run {more.run.id}: epochs {more.epoch[0]}..{more.epoch[-1]} added; open {more.run.url}")
