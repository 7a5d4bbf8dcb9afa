// INTERFACE STUB — to be implemented: `LocalSecrets` implementing `Secrets`.
