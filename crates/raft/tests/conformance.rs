//! openraft's own storage conformance suite against the fjall log store and the state machine
//! store, each test in fresh temp dirs.

use hakv_raft::{LogStore, StateMachineStore, StorageError, TypeConfig};
use hakv_store::{NoHook, StateMachine, StoreConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb, StorageIOError};
use std::sync::Arc;
use tempfile::TempDir;

struct FjallStores;

fn setup_error(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::new(ErrorSubject::Store, ErrorVerb::Write, &e).into()
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for FjallStores {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().map_err(setup_error)?;
        let log = LogStore::open(&dir.path().join("raft-log")).map_err(setup_error)?;
        let state =
            StateMachine::open(&StoreConfig::new(dir.path().join("state"), 1 << 20)).map_err(setup_error)?;
        let sm = StateMachineStore::open(Arc::new(state), Arc::new(NoHook), dir.path().join("snapshot"))
            .map_err(setup_error)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn fjall_storage_passes_openraft_conformance_suite() {
    Suite::test_all(FjallStores).expect("openraft storage suite");
}
