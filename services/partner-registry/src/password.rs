//! Password hashing with argon2id (19 MiB, 2 passes, 1 lane: OWASP's recommendation), on a
//! small pool of dedicated threads.
//!
//! Hashing is deliberately slow and memory-hungry, and both `Login` and `RegisterPartner`
//! run it for anonymous callers. So it never runs on the async workers, at most
//! `max_concurrent` hashes run at once (one per pool thread, each with its own 19 MiB block
//! buffer, reused while jobs wait and returned when the queue runs empty, so memory stays
//! bounded at `max_concurrent` × 19 MiB whatever the load and falls back at rest), and at
//! most `max_queued` more wait; a call beyond that is refused at once
//! ([`HashingError::Busy`]) instead of queueing without bound.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, TryLockError};

use argon2::password_hash::{PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tokio::sync::oneshot;

use crate::error::RegistryError;

/// Length of the derived hash, bytes.
const OUTPUT_BYTES: usize = 32;
/// Length of the random salt, bytes.
const SALT_BYTES: usize = 16;
/// Capacity of a block buffer, at least: 33 MiB of address space, of which only the 19 MiB
/// argon2 writes become resident. glibc serves a request of that size with its own memory
/// map and unmaps it on free; a 19 MiB request is served from a heap once glibc's dynamic
/// mmap threshold has risen (it does after the first large free), and stays resident for
/// good after the buffer is dropped.
const UNMAPPED_ON_FREE_BLOCKS: usize = 33 * 1024 * 1024 / std::mem::size_of::<Block>();

/// Why a hashing request was not served.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// The pool and its queue are full.
    #[error("too many password checks in progress")]
    Busy,
    /// Anything else (no randomness, a corrupt stored hash, a stopped pool).
    #[error("{0}")]
    Failed(String),
}

impl From<HashingError> for RegistryError {
    fn from(error: HashingError) -> Self {
        match error {
            HashingError::Busy => RegistryError::Overloaded,
            HashingError::Failed(detail) => RegistryError::Internal(detail),
        }
    }
}

enum Job {
    Hash(String, oneshot::Sender<Result<String, HashingError>>),
    Verify(String, String, oneshot::Sender<Result<bool, HashingError>>),
}

/// The hashing pool (cheap to clone).
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PasswordHasher")
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A pool of `max_concurrent` threads with room for `max_queued` waiting requests. The
    /// threads end when the last clone of the hasher is dropped.
    pub fn start(max_concurrent: usize, max_queued: usize) -> Result<Self, RegistryError> {
        let (jobs, receiver) = sync_channel(max_queued);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..max_concurrent.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || work(&receiver))
                .map_err(|error| {
                    RegistryError::Internal(format!("cannot start a hashing thread: {error}"))
                })?;
        }
        Ok(PasswordHasher { jobs })
    }

    fn submit(&self, job: Job) -> Result<(), HashingError> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(HashingError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(HashingError::Failed("the hashing pool stopped".into()))
            }
        }
    }

    /// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: String) -> Result<String, HashingError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash(password, reply))?;
        answer
            .await
            .map_err(|_| HashingError::Failed("hashing thread lost".into()))?
    }

    /// Whether `password` matches the PHC string `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, HashingError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify(password, hash, reply))?;
        answer
            .await
            .map_err(|_| HashingError::Failed("hashing thread lost".into()))?
    }
}

/// A pool thread: serves jobs until the hasher is dropped, reusing one block buffer while
/// jobs are waiting and giving it back to the system before it waits itself (19 MiB per
/// thread would otherwise be most of the registry's memory, held for good after one login).
fn work(receiver: &Mutex<Receiver<Job>>) {
    let mut blocks: Vec<Block> = Vec::new();
    while let Some(job) = next_job(receiver, &mut blocks) {
        match job {
            Job::Hash(password, reply) => {
                let _ = reply.send(hash_with(&mut blocks, &password));
            }
            Job::Verify(password, hash, reply) => {
                let _ = reply.send(verify_with(&mut blocks, &password, &hash));
            }
        }
    }
}

/// The next job; `None` once the hasher is dropped. Releases `blocks` when there is none
/// waiting yet.
fn next_job(receiver: &Mutex<Receiver<Job>>, blocks: &mut Vec<Block>) -> Option<Job> {
    let receiver = match receiver.try_lock() {
        Ok(receiver) => receiver,
        // Most likely another idle thread waiting for work with the lock held: the queue is
        // empty, so this one will wait too.
        Err(TryLockError::WouldBlock) => {
            drop(std::mem::take(blocks));
            receiver.lock().ok()?
        }
        Err(TryLockError::Poisoned(_)) => return None,
    };
    match receiver.try_recv() {
        Ok(job) => Some(job),
        Err(TryRecvError::Empty) => {
            drop(std::mem::take(blocks));
            receiver.recv().ok()
        }
        Err(TryRecvError::Disconnected) => None,
    }
}

fn failed(what: &str, error: impl std::fmt::Display) -> HashingError {
    HashingError::Failed(format!("{what}: {error}"))
}

/// Runs argon2id with `params` into a buffer of exactly the blocks it needs.
fn derive(
    blocks: &mut Vec<Block>,
    params: Params,
    password: &str,
    salt: &[u8],
) -> Result<[u8; OUTPUT_BYTES], HashingError> {
    let needed = params.block_count();
    if blocks.capacity() < needed {
        *blocks = Vec::with_capacity(needed.max(UNMAPPED_ON_FREE_BLOCKS));
    }
    blocks.resize(needed, Block::default());
    let mut output = [0u8; OUTPUT_BYTES];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut output, &mut blocks[..])
        .map_err(|error| failed("password hashing failed", error))?;
    Ok(output)
}

fn hash_with(blocks: &mut Vec<Block>, password: &str) -> Result<String, HashingError> {
    let mut salt = [0u8; SALT_BYTES];
    openssl::rand::rand_bytes(&mut salt).map_err(|error| failed("no randomness", error))?;
    let params = Params::default();
    let output = derive(blocks, params.clone(), password, &salt)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    ))
}

fn verify_with(blocks: &mut Vec<Block>, password: &str, hash: &str) -> Result<bool, HashingError> {
    let parsed =
        PasswordHash::new(hash).map_err(|error| failed("stored hash unreadable", error))?;
    let params =
        Params::try_from(&parsed).map_err(|error| failed("stored hash parameters", error))?;
    let salt: Salt<'_> = parsed
        .salt
        .ok_or_else(|| HashingError::Failed("stored hash has no salt".into()))?;
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|error| failed("stored salt unreadable", error))?;
    let expected = parsed
        .hash
        .ok_or_else(|| HashingError::Failed("stored hash has no output".into()))?;
    let output = derive(blocks, params, password, salt)?;
    let computed = argon2::password_hash::Output::new(&output)
        .map_err(|error| failed("hash output", error))?;
    // `Output` compares in constant time.
    Ok(computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify_interoperate_with_the_argon2_crate() {
        let hasher = PasswordHasher::start(2, 4).expect("pool");
        let hashed = hasher.hash("correct horse".into()).await.expect("hash");
        assert!(
            hashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hashed}"
        );
        assert!(
            hasher
                .verify("correct horse".into(), hashed.clone())
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), hashed.clone())
                .await
                .expect("verify")
        );
        // Hashes written by the argon2 crate's own PHC encoder (earlier versions) verify too.
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let theirs = Argon2::default()
            .hash_password(b"legacy password", &salt)
            .expect("hash")
            .to_string();
        assert!(
            hasher
                .verify("legacy password".into(), theirs)
                .await
                .expect("verify")
        );
        // And the crate verifies ours.
        use argon2::password_hash::PasswordVerifier as _;
        let parsed = PasswordHash::new(&hashed).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hasher = PasswordHasher::start(1, 1).expect("pool");
        let calls: Vec<_> = (0..6)
            .map(|index| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(format!("password {index}")).await })
            })
            .collect();
        let mut busy = 0;
        for call in calls {
            match call.await.expect("task") {
                Ok(_) => {}
                Err(HashingError::Busy) => busy += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert!(busy >= 1, "one running, one queued: the rest are refused");
    }
}
