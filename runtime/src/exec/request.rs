//! What a caller asks to run: a [`Submission`] (function, arguments held,
//! options) and the [`Policy`] its options give, defaults applied; and the
//! limits on what a guest may ask.

use crate::config::Config;
use crate::objects::arg::TaskArg;
use crate::objects::held::HeldRefs;
use std::sync::Arc;
use std::time::Duration;
use wray_abi::wire::{ErrorRecord, Options};
use wray_abi::{ErrorKind, TaskId};

/// Most return values one task may have.
pub(crate) const MAX_RETURNS: u32 = 16;
/// Inline argument values at least this large are stored as objects, by
/// content: passing the same large value to many tasks stores it once.
pub(crate) const INLINE_PUT_MIN: usize = 64 << 10;

/// Largest task spec a guest may submit.
pub(crate) fn max_spec_len(config: &Config) -> usize {
    config.max_object_size.saturating_add(1 << 20)
}

/// A task's retry, time and memory policy, defaults applied.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub max_retries: i32,
    pub retry_exceptions: bool,
    pub timeout: Option<Duration>,
    pub memory_limit: u64,
    /// Results may be made again even if the task reads a clock or random
    /// numbers.
    pub allow_recompute: bool,
}

impl Policy {
    pub fn new(options: &Options, config: &Config) -> Policy {
        Policy {
            max_retries: options.max_retries.unwrap_or(config.max_retries),
            retry_exceptions: options.retry_exceptions.unwrap_or(false),
            timeout: options
                .timeout_ms
                .map(Duration::from_millis)
                .or(config.task_timeout),
            memory_limit: options
                .memory_limit
                .unwrap_or(config.memory_limit)
                .min(crate::config::MAX_WASM32_MEMORY),
            allow_recompute: options.allow_recompute.unwrap_or(false),
        }
    }

    /// Whether a failed attempt number `attempt` (from 1) is tried again.
    pub fn retries(&self, rec: &ErrorRecord, attempt: u32) -> bool {
        let retryable = match rec.kind {
            ErrorKind::Cancelled | ErrorKind::DependencyFailed | ErrorKind::InvalidModule => false,
            k if k.is_system_failure() => true,
            _ => self.retry_exceptions,
        };
        retryable && (self.max_retries < 0 || attempt <= self.max_retries as u32)
    }
}

/// What a caller asks to run: everything but where.
pub(crate) struct Submission {
    /// The function (the module's shared copy of the name, when it has one).
    pub function: Arc<str>,
    pub args: Vec<TaskArg>,
    /// The objects the arguments name, held until the task ends.
    pub _held: HeldRefs,
    pub num_returns: u32,
    pub options: Options,
    pub parent: Option<TaskId>,
    /// 1 for tasks submitted by a driver or the host, parent's depth + 1
    /// for nested ones.
    pub depth: u32,
    /// The job the submitter belongs to (0: the host).
    pub job: u64,
    /// Whether it was checked against the callee's manifest already (the
    /// host's `CallBuilder` does, before it submits); a guest's calls are
    /// checked when they are submitted.
    pub checked: bool,
}

impl Submission {
    /// A submission from the host: one result, default depth, no parent,
    /// no job, checked.
    pub fn host(function: Arc<str>, args: Vec<TaskArg>, held: HeldRefs, options: Options) -> Self {
        Submission {
            function,
            args,
            _held: held,
            num_returns: 1,
            options,
            parent: None,
            depth: 1,
            job: 0,
            checked: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_retries: i32, retry_exceptions: bool) -> Policy {
        let options = Options {
            max_retries: Some(max_retries),
            retry_exceptions: Some(retry_exceptions),
            ..Options::default()
        };
        Policy::new(&options, &Config::default())
    }

    fn failure(kind: ErrorKind) -> ErrorRecord {
        ErrorRecord::new(kind, "f", "why")
    }

    #[test]
    fn system_failures_are_retried_up_to_the_limit() {
        let p = policy(2, false);
        for kind in [ErrorKind::WorkerFailure, ErrorKind::ObjectLost] {
            assert!(p.retries(&failure(kind), 1), "{kind:?}");
            assert!(p.retries(&failure(kind), 2), "{kind:?}");
            assert!(!p.retries(&failure(kind), 3), "{kind:?}: the limit");
        }
        let forever = policy(-1, false);
        assert!(forever.retries(&failure(ErrorKind::WorkerFailure), 1_000_000));
        let never = policy(0, true);
        assert!(!never.retries(&failure(ErrorKind::WorkerFailure), 1));
    }

    #[test]
    fn guest_errors_are_retried_only_with_retry_exceptions() {
        for kind in [
            ErrorKind::Application,
            ErrorKind::Panic,
            ErrorKind::Trap,
            ErrorKind::Timeout,
        ] {
            assert!(!policy(3, false).retries(&failure(kind), 1), "{kind:?}");
            assert!(policy(3, true).retries(&failure(kind), 1), "{kind:?}");
            assert!(!policy(3, true).retries(&failure(kind), 4), "{kind:?}");
        }
    }

    #[test]
    fn cancels_failed_arguments_and_bad_modules_are_never_retried() {
        for kind in [
            ErrorKind::Cancelled,
            ErrorKind::DependencyFailed,
            ErrorKind::InvalidModule,
        ] {
            assert!(!policy(-1, true).retries(&failure(kind), 1), "{kind:?}");
        }
    }

    #[test]
    fn a_policy_takes_the_calls_options_over_the_runtimes_defaults() {
        let config = Config {
            max_retries: 7,
            task_timeout: Some(Duration::from_secs(9)),
            ..Config::default()
        };
        let p = Policy::new(&Options::default(), &config);
        assert_eq!(p.max_retries, 7);
        assert_eq!(p.timeout, Some(Duration::from_secs(9)));
        let options = Options {
            max_retries: Some(1),
            timeout_ms: Some(250),
            memory_limit: Some(u64::MAX),
            ..Options::default()
        };
        let p = Policy::new(&options, &config);
        assert_eq!(p.max_retries, 1);
        assert_eq!(p.timeout, Some(Duration::from_millis(250)));
        assert_eq!(p.memory_limit, crate::config::MAX_WASM32_MEMORY, "capped");
    }
}
