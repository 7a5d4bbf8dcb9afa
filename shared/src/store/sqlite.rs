// INTERFACE STUB — to be implemented: `SqliteStore` implementing `Store`.
use std::path::Path;

use super::StoreResult;

pub struct SqliteStore {}

impl SqliteStore {
    /// Opens (creating the file and running migrations when needed) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let _ = path;
        todo!()
    }
}
