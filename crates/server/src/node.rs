//! A running node's parts in one place: configuration, state machine, group-commit writer,
//! read cache and request limits. Handlers hold an `Arc<Node>`.

use crate::cache_hook::{CacheHook, CachedValue, ValueCache};
use crate::clock::now_ms;
use crate::{ApiError, ServeConfig};
use hakv_store::{Command, Op, Outcome, StateMachine, StoreConfig, StoreError, Writer, WriterConfig};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Node {
    pub config: ServeConfig,
    pub state_machine: Arc<StateMachine>,
    pub writer: Writer,
    pub cache: Arc<ValueCache>,
    /// Requests being served now (admission control in `limits`).
    pub in_flight: AtomicUsize,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot open the store in {dir}: {source}")]
    OpenStore {
        dir: std::path::PathBuf,
        source: StoreError,
    },
    #[error("cluster mode (--peers) is not served yet by this build; run without --peers")]
    ClusterNotReady,
}

impl Node {
    /// Opens the store in `config.data_dir` (recovering whatever is there) and starts the
    /// writer thread.
    pub fn open(config: ServeConfig) -> Result<Arc<Node>, NodeError> {
        if config.is_clustered() {
            return Err(NodeError::ClusterNotReady);
        }
        let store_config = StoreConfig {
            data_dir: config.data_dir.clone(),
            block_cache_bytes: config.store_cache_bytes,
        };
        let state_machine =
            Arc::new(
                StateMachine::open(&store_config).map_err(|source| NodeError::OpenStore {
                    dir: config.data_dir.clone(),
                    source,
                })?,
            );
        let cache = Arc::new(ValueCache::new(config.cache_config()));
        let writer_config = WriterConfig {
            queue_capacity: config.write_queue,
            ..WriterConfig::default()
        };
        let (writer, thread) = Writer::start(
            state_machine.clone(),
            Arc::new(CacheHook(cache.clone())),
            writer_config,
        );
        Ok(Arc::new(Node {
            config,
            state_machine,
            writer,
            cache,
            in_flight: AtomicUsize::new(0),
            writer_thread: Mutex::new(Some(thread)),
        }))
    }

    /// The live value of `key`, from the cache or else from the state machine.
    pub fn read(&self, key: &str) -> Result<Option<Arc<CachedValue>>, ApiError> {
        let now = now_ms();
        if let Some(value) = self.cache.get(key) {
            return Ok(value.is_live_at(now).then_some(value));
        }
        // Load the applied revision before reading: the value read is at least this new,
        // which is what `fill` needs to know to refuse a fill that lost a race with a write.
        let read_stamp = self.state_machine.revision().0;
        let Some(record) = self.state_machine.get(key).map_err(unavailable)? else {
            return Ok(None);
        };
        if !record.is_live_at(now) {
            return Ok(None);
        }
        let value = Arc::new(CachedValue::from_record(&record));
        self.cache
            .fill(key.to_owned(), value.clone(), value.weight(key), read_stamp);
        Ok(Some(value))
    }

    /// Applies one change durably, stamped with this node's clock.
    pub async fn write(&self, op: Op) -> Result<Outcome, ApiError> {
        Ok(self.writer.propose(Command { at_ms: now_ms(), op }).await?)
    }

    /// Ready to serve: the store accepts writes.
    pub fn is_ready(&self) -> bool {
        self.writer.is_healthy()
    }

    /// Takes the writer thread's handle, to join it once every `Writer` clone is gone.
    pub(crate) fn take_writer_thread(&self) -> Option<JoinHandle<()>> {
        self.writer_thread.lock().expect("writer thread lock").take()
    }
}

pub(crate) fn unavailable(err: StoreError) -> ApiError {
    ApiError::Unavailable(format!("storage read failed: {err}"))
}
