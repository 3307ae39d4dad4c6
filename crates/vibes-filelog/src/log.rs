//! [`FileLog`]: the backend over a data directory.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::thread;

use async_trait::async_trait;
use jiff::Timestamp;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, oneshot};
use vibes_log::backend::local::{
    GroupCoordinator, GroupShare, LocalMember, LocalStore, validate_batch,
};

use crate::group_share::Shares;
use vibes_log::backend::{
    AppendAck, GroupInfo, LogBackend, Record, RecordConsumer, StoredRecord, TopicInfo,
};
use vibes_log::{
    AppendOptions, ConsumerOptions, GroupName, LogError, Offset, TopicConfig, TopicName, Watermarks,
};

use crate::blocking::blocking;
use crate::fsutil::{create_dir_durable, io_err, sync_dir, write_atomic};
use crate::offsets::{self, DamagedCommit};
use crate::options::FileLogOptions;
use crate::partition::{
    AppendRequest, Partition, PartitionCheck, apply_retention_now, trim_before,
};
use crate::quarantine::Quarantined;

const META_FILE: &str = "topic.meta";

/// The embedded, durable event log: topics of partitioned, segmented, checksummed
/// files under one data directory. Several processes may open the same directory.
///
/// Cloning gives another handle to the same open log.
#[derive(Clone)]
pub struct FileLog {
    store: Arc<Store>,
}

impl fmt::Debug for FileLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLog")
            .field("dir", &self.store.dir)
            .finish_non_exhaustive()
    }
}

/// The shared state behind [`FileLog`] handles.
pub(crate) struct Store {
    /// This store, for moving into work done off the async runtime.
    this: Weak<Store>,
    dir: PathBuf,
    options: Arc<FileLogOptions>,
    topics: RwLock<BTreeMap<TopicName, Arc<FileTopic>>>,
    coordinator: Arc<GroupCoordinator>,
    /// This process's shares of groups that other processes may read too.
    shares: Shares,
    watcher: Mutex<bool>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

struct FileTopic {
    dir: PathBuf,
    partitions: Vec<Partition>,
    signal: Arc<Notify>,
}

impl FileLog {
    /// Opens (creating if needed) the log in `dir`. Topics are opened, and their last
    /// segments recovered, when first used.
    pub fn open(dir: impl AsRef<Path>, options: FileLogOptions) -> Result<Self, LogError> {
        let dir = dir.as_ref().to_owned();
        // The fields are public; apply the builders' limits to values set directly.
        let options = options
            .clone()
            .segment_bytes(options.segment_bytes)
            .index_interval_bytes(options.index_interval_bytes);
        create_dir_durable(&dir.join("topics"))?;
        Ok(FileLog {
            store: Arc::new_cyclic(|this| Store {
                this: this.clone(),
                dir,
                options: Arc::new(options),
                topics: RwLock::new(BTreeMap::new()),
                coordinator: Arc::default(),
                shares: Shares::default(),
                watcher: Mutex::new(false),
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.store.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &FileLogOptions {
        &self.store.options
    }

    /// Bytes the segments of `topic` occupy on disk, per partition.
    pub fn bytes_on_disk(&self, topic: &TopicName) -> Result<Vec<u64>, LogError> {
        let t = self.store.topic(topic)?;
        t.partitions
            .iter()
            .map(|p| p.shared.bytes_on_disk())
            .collect()
    }

    /// Reads every record of every partition of `topic`, verifying every checksum,
    /// offset and header, and reports every damaged range in each partition with its
    /// file, byte position and the offsets it held. With `repair`, moves each damaged
    /// range to a quarantine file beside its segment (named with the partition and
    /// offsets), keeps every intact batch readable at its offset (batches after the
    /// damage move to a segment of their own), records gaps of missing offsets, and
    /// cuts a torn tail. Nothing intact is deleted. Run it with no other process
    /// using the topic: other processes' views of a repaired segment are stale.
    pub fn check(&self, topic: &TopicName, repair: bool) -> Result<Vec<PartitionCheck>, LogError> {
        let t = self.store.topic(topic)?;
        t.partitions
            .iter()
            .map(|p| p.shared.check(repair))
            .collect()
    }

    /// Checks every consumer commit file of `topic`. A damaged one never costs records:
    /// it is read as offset 0 (the group reads again from the lowest offset held). With
    /// `repair`, each is kept as `<file>.damaged` and replaced with a commit of 0.
    pub fn check_commits(
        &self,
        topic: &TopicName,
        repair: bool,
    ) -> Result<Vec<DamagedCommit>, LogError> {
        let t = self.store.topic(topic)?;
        offsets::check(&t.dir, repair)
    }

    /// The gaps of offsets of `topic` that repairs moved to quarantine files, per
    /// partition in offset order.
    pub fn quarantined(&self, topic: &TopicName) -> Result<Vec<Quarantined>, LogError> {
        let t = self.store.topic(topic)?;
        let mut all = Vec::new();
        for p in &t.partitions {
            all.extend(p.shared.quarantined()?);
        }
        Ok(all)
    }

    /// `group`'s committed next offset for `partition` of `topic` (for the outbox's
    /// forwarder, which commits without being a group member).
    pub(crate) async fn load_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
    ) -> Result<Option<Offset>, LogError> {
        LocalStore::load_commit(&*self.store, topic, group, partition).await
    }

    /// Stores `group`'s committed next offset for `partition` of `topic`, durably.
    pub(crate) async fn store_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
        next_offset: Offset,
    ) -> Result<(), LogError> {
        LocalStore::store_commit(&*self.store, topic, group, partition, next_offset).await
    }

    /// Applies the retention limits to every partition of `topic` now (they are also
    /// applied whenever a segment is sealed). Returns the number of segments deleted.
    pub fn enforce_retention(&self, topic: &TopicName) -> Result<usize, LogError> {
        let t = self.store.topic(topic)?;
        t.partitions
            .iter()
            .map(|p| apply_retention_now(&p.shared))
            .sum()
    }
}

fn topic_dir(root: &Path, topic: &TopicName) -> PathBuf {
    root.join("topics").join(topic.stream()).join(topic.topic())
}

fn encode_meta(partitions: u32) -> String {
    format!("vibes-topic 1\npartitions {partitions}\n")
}

fn decode_meta(path: &Path) -> Result<u32, LogError> {
    let text = fs::read_to_string(path).map_err(|e| io_err("reading", path, e))?;
    let corrupt = |reason: &str| LogError::Corrupt {
        file: path.to_owned(),
        position: 0,
        reason: reason.to_owned(),
    };
    let mut lines = text.lines();
    if lines.next() != Some("vibes-topic 1") {
        return Err(corrupt("not a version 1 topic file"));
    }
    lines
        .next()
        .and_then(|l| l.strip_prefix("partitions "))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| corrupt("no valid `partitions N` line"))
}

impl Store {
    /// Runs `work` on this store on tokio's blocking pool (see [`blocking`]): every file
    /// operation of an async method goes through here or the writer thread.
    async fn off_runtime<T, F>(&self, work: F) -> Result<T, LogError>
    where
        F: FnOnce(&Store) -> Result<T, LogError> + Send + 'static,
        T: Send + 'static,
    {
        let Some(store) = self.this.upgrade() else {
            // Only reachable while the last handle is being dropped.
            return Err(LogError::Closed);
        };
        blocking(move || work(&store)).await
    }

    /// The open topic `name`, loaded (its partitions recovered) off the runtime if this
    /// process has not opened it yet.
    async fn topic_async(&self, name: &TopicName) -> Result<Arc<FileTopic>, LogError> {
        if let Some(topic) = self.topics.read().get(name) {
            return Ok(Arc::clone(topic));
        }
        let name = name.clone();
        self.off_runtime(move |store| store.topic(&name)).await
    }

    fn topic(&self, name: &TopicName) -> Result<Arc<FileTopic>, LogError> {
        if let Some(topic) = self.topics.read().get(name) {
            return Ok(Arc::clone(topic));
        }
        let dir = topic_dir(&self.dir, name);
        let meta = dir.join(META_FILE);
        if !meta.exists() {
            return Err(LogError::no_such_topic(name));
        }
        self.load_topic(name, dir, decode_meta(&meta)?)
    }

    fn load_topic(
        &self,
        name: &TopicName,
        dir: PathBuf,
        partitions: u32,
    ) -> Result<Arc<FileTopic>, LogError> {
        let mut topics = self.topics.write();
        if let Some(topic) = topics.get(name) {
            return Ok(Arc::clone(topic));
        }
        let signal = Arc::new(Notify::new());
        let partitions = (0..partitions)
            .map(|p| {
                Partition::open(
                    name.clone(),
                    p,
                    dir.join(p.to_string()),
                    Arc::clone(&self.options),
                    Arc::clone(&signal),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let topic = Arc::new(FileTopic {
            dir,
            partitions,
            signal,
        });
        topics.insert(name.clone(), Arc::clone(&topic));
        Ok(topic)
    }

    fn partition<'a>(
        &self,
        topic: &'a FileTopic,
        name: &TopicName,
        partition: u32,
    ) -> Result<&'a Partition, LogError> {
        topic.partitions.get(partition as usize).ok_or_else(|| {
            LogError::no_such_partition(name, topic.partitions.len() as u32, partition)
        })
    }

    fn info(&self, name: &TopicName, topic: &FileTopic) -> Result<TopicInfo, LogError> {
        Ok(TopicInfo {
            name: name.clone(),
            partitions: topic
                .partitions
                .iter()
                .map(|p| p.shared.watermarks())
                .collect::<Result<_, _>>()?,
        })
    }

    /// Starts, once, the thread that wakes waiting consumers when another process
    /// appends. It ends when the log is dropped.
    fn start_watcher(self: &Arc<Self>) {
        let mut started = self.watcher.lock();
        if *started {
            return;
        }
        *started = true;
        let weak: Weak<Store> = Arc::downgrade(self);
        let interval = self.options.external_check_interval;
        let spawned = thread::Builder::new()
            .name("vibes-filelog-watcher".into())
            .spawn(move || {
                loop {
                    thread::sleep(interval);
                    let Some(store) = weak.upgrade() else { return };
                    let topics: Vec<Arc<FileTopic>> =
                        store.topics.read().values().cloned().collect();
                    for topic in topics {
                        if topic.partitions.iter().any(|p| p.shared.changed_on_disk()) {
                            topic.signal.notify_waiters();
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the watcher; appends by other processes are seen on the next poll");
            *started = false;
        }
    }
}

#[async_trait]
impl LocalStore for Store {
    fn partitions(&self, topic: &TopicName) -> Result<u32, LogError> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let t = self.topic_async(topic).await?;
        let shared = Arc::clone(&self.partition(&t, topic, partition)?.shared);
        blocking(move || shared.read(from, max)).await
    }

    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks, LogError> {
        let t = self.topic_async(topic).await?;
        let shared = Arc::clone(&self.partition(&t, topic, partition)?.shared);
        blocking(move || shared.watermarks()).await
    }

    async fn resume_after_damage(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
    ) -> Result<Option<Offset>, LogError> {
        let t = self.topic_async(topic).await?;
        Ok(self
            .partition(&t, topic, partition)?
            .shared
            .resume_after_damage(from))
    }

    async fn offset_for_timestamp(
        &self,
        topic: &TopicName,
        partition: u32,
        time: Timestamp,
    ) -> Result<Offset, LogError> {
        let t = self.topic_async(topic).await?;
        let shared = Arc::clone(&self.partition(&t, topic, partition)?.shared);
        blocking(move || shared.offset_for_timestamp(time)).await
    }

    async fn load_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
    ) -> Result<Option<Offset>, LogError> {
        let t = self.topic_async(topic).await?;
        let path = offsets::offset_path(&t.dir, group, partition);
        blocking(move || offsets::load(&path)).await
    }

    async fn store_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
        next_offset: Offset,
    ) -> Result<(), LogError> {
        let t = self.topic_async(topic).await?;
        let path = offsets::offset_path(&t.dir, group, partition);
        blocking(move || offsets::store(&path, next_offset)).await
    }

    fn append_signal(&self, topic: &TopicName) -> Result<Arc<Notify>, LogError> {
        Ok(Arc::clone(&self.topic(topic)?.signal))
    }

    fn coordinator(&self) -> &Arc<GroupCoordinator> {
        &self.coordinator
    }

    /// Processes split a group's partitions through files under the group's directory
    /// (see `group_share`).
    fn group_share(
        &self,
        topic: &TopicName,
        group: &GroupName,
    ) -> Result<Arc<dyn GroupShare>, LogError> {
        let t = self.topic(topic)?;
        let dir = t.dir.join("groups").join(group.as_str());
        // Joined off the runtime by `consumer` first, so this finds it.
        let share: Arc<dyn GroupShare> = match self.shares.joined(&dir) {
            Some(share) => share,
            None => self.shares.get(dir, t.partitions.len() as u32)?,
        };
        Ok(share)
    }
}

#[async_trait]
impl LogBackend for FileLog {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn ensure_topic(
        &self,
        topic: &TopicName,
        config: TopicConfig,
    ) -> Result<TopicInfo, LogError> {
        config.check(topic)?;
        let topic = topic.clone();
        self.store
            .off_runtime(move |store| {
                let dir = topic_dir(&store.dir, &topic);
                let meta = dir.join(META_FILE);
                if !meta.exists() {
                    create_topic(&dir, config.partitions)?;
                }
                let existing = decode_meta(&meta)?;
                if existing != config.partitions {
                    return Err(LogError::PartitionCountMismatch {
                        topic: topic.to_string(),
                        existing,
                        requested: config.partitions,
                    });
                }
                let t = store.load_topic(&topic, dir, existing)?;
                store.info(&topic, &t)
            })
            .await
    }

    async fn topic_info(&self, topic: &TopicName) -> Result<TopicInfo, LogError> {
        let topic = topic.clone();
        self.store
            .off_runtime(move |store| {
                let t = store.topic(&topic)?;
                store.info(&topic, &t)
            })
            .await
    }

    async fn list_topics(&self) -> Result<Vec<TopicName>, LogError> {
        self.store
            .off_runtime(|store| {
                let root = store.dir.join("topics");
                let mut names = Vec::new();
                for stream in read_dir_names(&root)? {
                    for topic in read_dir_names(&root.join(&stream))? {
                        if let Ok(name) = TopicName::new(&format!("{stream}/{topic}"))
                            && topic_dir(&store.dir, &name).join(META_FILE).exists()
                        {
                            names.push(name);
                        }
                    }
                }
                names.sort();
                Ok(names)
            })
            .await
    }

    async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<AppendAck, LogError> {
        let t = self.store.topic_async(topic).await?;
        validate_batch(topic, t.partitions.len() as u32, partition, &records)?;
        let (reply, ack) = oneshot::channel();
        self.store
            .partition(&t, topic, partition)?
            .submit(AppendRequest {
                records,
                durability: options.durability.unwrap_or(self.store.options.durability),
                reply,
            })?;
        ack.await.map_err(|_| LogError::Closed)?
    }

    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks, LogError> {
        LocalStore::watermarks(&*self.store, topic, partition).await
    }

    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        LocalStore::read(&*self.store, topic, partition, from, max).await
    }

    /// Deletes the sealed segments whose records all lie before `before`.
    async fn trim(
        &self,
        topic: &TopicName,
        partition: u32,
        before: Offset,
    ) -> Result<u64, LogError> {
        let t = self.store.topic_async(topic).await?;
        let shared = Arc::clone(&self.store.partition(&t, topic, partition)?.shared);
        blocking(move || trim_before(&shared, before)).await
    }

    async fn consumer(
        &self,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<Box<dyn RecordConsumer>, LogError> {
        // Loaded here, off the runtime, so the consumer finds it open, and the group's
        // share of this process joined (file work) for the member to take.
        self.store.topic_async(topic).await?;
        let (t, g) = (topic.clone(), group.clone());
        let share = self
            .store
            .off_runtime(move |store| {
                let topic = store.topic(&t)?;
                let dir = topic.dir.join("groups").join(g.as_str());
                store.shares.get(dir, topic.partitions.len() as u32)
            })
            .await?;
        self.store.start_watcher();
        let consumer = LocalMember::join(Arc::clone(&self.store), topic, group, options).await?;
        drop(share);
        Ok(Box::new(consumer))
    }

    async fn groups(&self, topic: &TopicName) -> Result<Vec<GroupInfo>, LogError> {
        let topic = topic.clone();
        self.store
            .off_runtime(move |store| {
                let t = store.topic(&topic)?;
                let mut groups = Vec::new();
                for name in read_dir_names(&t.dir.join("groups"))? {
                    let Ok(group) = GroupName::new(&name) else {
                        continue;
                    };
                    let committed = (0..t.partitions.len() as u32)
                        .map(|p| offsets::load(&offsets::offset_path(&t.dir, &group, p)))
                        .collect::<Result<Vec<_>, _>>()?;
                    if committed.iter().any(Option::is_some) {
                        groups.push(GroupInfo { group, committed });
                    }
                }
                groups.sort_by(|a, b| a.group.cmp(&b.group));
                Ok(groups)
            })
            .await
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, LogError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Some(name) = entry.file_name().to_str()
            && !name.starts_with('.')
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Creates a topic directory atomically: built under a temporary name, then renamed
/// into place. If another process created it first, its version stands.
fn create_topic(dir: &Path, partitions: u32) -> Result<(), LogError> {
    let parent = dir.parent().expect("topic dirs live under a stream dir");
    create_dir_durable(parent)?;
    let name = dir.file_name().expect("a topic dir name").to_string_lossy();
    let tmp = parent.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    fs::create_dir(&tmp).map_err(|e| io_err("creating", &tmp, e))?;
    let built = (|| {
        for p in 0..partitions {
            fs::create_dir(tmp.join(p.to_string())).map_err(|e| io_err("creating", &tmp, e))?;
        }
        write_atomic(&tmp.join(META_FILE), encode_meta(partitions).as_bytes())
    })();
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match fs::rename(&tmp, dir) {
        Ok(()) => sync_dir(parent),
        Err(_) if dir.join(META_FILE).exists() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(io_err("renaming into place", dir, e))
        }
    }
}
