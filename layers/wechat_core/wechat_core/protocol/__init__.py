"""WeChat's wire protocol: message crypto (all AES and padding), XML envelopes and typed
messages, and the checks of a signed push. Imports nothing of the service above it."""
