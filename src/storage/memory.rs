#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! The memory RocksDB may hold: one block cache shared by every column
//! family (`block-cache-size`), and one budget for all memtables together
//! (`memtable-budget`), past which the largest memtable is flushed. Both
//! change at run time through CONFIG SET. Data beyond them stays on disk
//! and is read back through the cache: Kiwi serves data sets larger than
//! memory (bench/large.py measures it).

use parking_lot::Mutex;
use rocksdb::{BlockBasedOptions, Cache, Options, WriteBufferManager};

/// `block-cache-size` unless configured.
pub const DEFAULT_BLOCK_CACHE: usize = 128 << 20;
/// `memtable-budget` unless configured.
pub const DEFAULT_MEMTABLE_BUDGET: usize = 128 << 20;
/// The smallest value either takes: RocksDB needs room for a few blocks
/// and a memtable per family.
pub const MIN_BUDGET: usize = 1 << 20;

/// Each column family's memtable size under a budget of `memtables` for
/// all: a quarter of it, at most [`super::WRITE_BUFFER_BYTES`], at least
/// 256 KB. RocksDB reserves an eighth of it per family as soon as the
/// family is written, so with eight families a memtable as large as the
/// budget would put an idle server over it.
pub fn family_buffer(memtables: usize) -> usize {
    (memtables / 4).clamp(256 << 10, super::WRITE_BUFFER_BYTES)
}

/// The sizes a storage opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    pub block_cache: usize,
    pub memtables: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            block_cache: DEFAULT_BLOCK_CACHE,
            memtables: DEFAULT_MEMTABLE_BUDGET,
        }
    }
}

/// The shared cache and memtable budget of one open storage.
pub(crate) struct MemoryBudget {
    cache: Mutex<Cache>,
    buffers: WriteBufferManager,
}

impl MemoryBudget {
    pub(crate) fn new(config: MemoryConfig) -> MemoryBudget {
        MemoryBudget {
            cache: Mutex::new(Cache::new_lru_cache(config.block_cache.max(MIN_BUDGET))),
            // No stall: past the budget RocksDB flushes, writes go on.
            buffers: WriteBufferManager::new_write_buffer_manager(
                config.memtables.max(MIN_BUDGET),
                false,
            ),
        }
    }

    /// Put every memtable of the database under the budget.
    pub(crate) fn apply_to_db(&self, opts: &mut Options) {
        opts.set_write_buffer_manager(&self.buffers);
    }

    /// A column family's table options: the shared cache, and bloom
    /// filters for point reads (GET, HGET, SISMEMBER… and every command's
    /// meta lookup), so a lookup skips memtables and table files that
    /// cannot hold the key instead of searching each of them.
    pub(crate) fn apply_to_family(&self, cf_opts: &mut Options) {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache.lock());
        table.set_bloom_filter(10.0, false);
        table.set_whole_key_filtering(true);
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_memtable_prefix_bloom_ratio(0.1);
        cf_opts.set_memtable_whole_key_filtering(true);
    }

    /// Resize both (CONFIG SET); a smaller cache evicts at once.
    pub(crate) fn resize(&self, config: MemoryConfig) {
        self.cache
            .lock()
            .set_capacity(config.block_cache.max(MIN_BUDGET));
        self.buffers
            .set_buffer_size(config.memtables.max(MIN_BUDGET));
    }

    /// Bytes held now: (block cache, memtables).
    pub(crate) fn usage(&self) -> (usize, usize) {
        (self.cache.lock().get_usage(), self.buffers.get_usage())
    }
}
