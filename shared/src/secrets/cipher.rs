// INTERFACE STUB — to be implemented: XChaCha20-Poly1305 sealing with a 32-byte key.
