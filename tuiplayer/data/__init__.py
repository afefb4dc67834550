"""Training data: reading multitrack datasets, augmenting stems, and making model examples.

Pure numpy / soundfile / scipy (no TensorFlow), so the same code feeds a trainer under any
Keras backend. `tuiplayer.nn.pipeline` wraps it in tf.data.

- `tracks`: find and read MUSDB18-HQ folders and MUSDB18 `.stem.mp4` files.
- `store`: the stems of many tracks, decoded once (in memory) or read from disk per excerpt.
- `augment`: random per-stem changes (gain, channel swap, EQ, saturation, reverb).
- `examples`: random excerpts → magnitude spectrograms, in batches.
- `speed`: how many examples per second the pipeline makes (``python -m tuiplayer.data.speed``).
"""
