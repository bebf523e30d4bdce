//! Custom resources (Ray's `resources={"gpu": 1}`): what a node has
//! (`wray start --resources '{"gpu": 1}'`), and what a call or an actor
//! holds of them while it runs or lives.
//!
//! Amounts count in thousandths of a unit (`milli`), so half a GPU is
//! exact. Each resource is a FIFO semaphore of its thousandths; a request
//! takes its resources in name order, so two requests never hold one
//! resource each while waiting for the other's.
//!
//! A call waits for its resources before it queues for its slots, never
//! while holding one: a call that holds slots never waits on a resource.

use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most of one resource a node may have, in thousandths (what one
/// semaphore request can take).
pub(crate) const MAX_MILLI: u64 = u32::MAX as u64;

/// A node's custom resources.
#[derive(Default)]
pub(crate) struct Resources {
    pools: BTreeMap<String, Pool>,
}

struct Pool {
    total: u64,
    free: Arc<Semaphore>,
}

/// Resources held by a call or an actor; given back when dropped.
pub(crate) struct Held(#[allow(dead_code)] Vec<OwnedSemaphorePermit>);

impl Resources {
    /// A node with `totals` (thousandths by name; each at most
    /// [`MAX_MILLI`], which [`from_units`] checks).
    pub fn new(totals: &BTreeMap<String, u64>) -> Resources {
        let pools = totals
            .iter()
            .filter(|(_, t)| **t > 0)
            .map(|(name, total)| {
                let total = (*total).min(MAX_MILLI);
                let free = Arc::new(Semaphore::new(total as usize));
                (name.clone(), Pool { total, free })
            })
            .collect();
        Resources { pools }
    }

    /// Whether this node could ever grant `request`; if not, why.
    pub fn check(&self, request: &[(String, u64)]) -> Result<(), String> {
        check_request(request)?;
        for (name, amount) in request {
            let total = self.pools.get(name).map_or(0, |p| p.total);
            if *amount > total {
                return Err(format!(
                    "the call needs {} of resource `{name}`, and this node has {}",
                    units(*amount),
                    units(total)
                ));
            }
        }
        Ok(())
    }

    /// Whether `request` (checked) could be granted now without waiting.
    // Used by the node (status, placement).
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub fn free_now(&self, request: &[(String, u64)]) -> bool {
        request.iter().all(|(name, amount)| {
            self.pools
                .get(name)
                .is_some_and(|p| p.free.available_permits() as u64 >= *amount)
        })
    }

    /// Takes `request` (checked), waiting for it in line.
    pub async fn acquire(&self, request: &[(String, u64)]) -> Held {
        let mut sorted: Vec<&(String, u64)> = request.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut permits = Vec::with_capacity(sorted.len());
        for (name, amount) in sorted {
            let Some(pool) = self.pools.get(name) else {
                continue;
            };
            let n = u32::try_from(*amount).unwrap_or(u32::MAX);
            // The semaphore is never closed.
            if let Ok(p) = pool.free.clone().acquire_many_owned(n).await {
                permits.push(p);
            }
        }
        Held(permits)
    }

    /// Each resource: its total and what is free now, in thousandths.
    // Used by the node (status, placement).
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub fn usage(&self) -> BTreeMap<String, (u64, u64)> {
        self.pools
            .iter()
            .map(|(name, p)| {
                let free = (p.free.available_permits() as u64).min(p.total);
                (name.clone(), (p.total, free))
            })
            .collect()
    }
}

/// Whether `request` is well formed: positive amounts, each name once.
pub(crate) fn check_request(request: &[(String, u64)]) -> Result<(), String> {
    for (i, (name, amount)) in request.iter().enumerate() {
        if name.is_empty() {
            return Err("a resource request names no resource".into());
        }
        if *amount == 0 {
            return Err(format!(
                "the amount of resource `{name}` must be positive (counted in thousandths)"
            ));
        }
        if request[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("resource `{name}` is requested twice"));
        }
    }
    Ok(())
}

/// Thousandths as units (as users write them and listings show them).
// Used by the node (status, placement).
#[cfg_attr(not(feature = "node"), allow(dead_code))]
pub(crate) fn as_units(milli: u64) -> f64 {
    milli as f64 / 1000.0
}

/// Thousandths as units, for messages: `1500` is `1.5`.
pub(crate) fn units(milli: u64) -> String {
    let (whole, frac) = (milli / 1000, milli % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Amounts in units (as users write them) as thousandths, checked.
pub(crate) fn from_units(map: BTreeMap<String, f64>) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    for (name, amount) in map {
        if name.is_empty() {
            return Err("a resource needs a name".into());
        }
        if name == "CPU" || name == "memory" {
            return Err(format!(
                "`{name}` is not a custom resource: a node's CPUs are --num-cpus, its memory \
                 its object store's"
            ));
        }
        let milli = amount * 1000.0;
        if !(milli.is_finite() && milli >= 0.0 && milli <= MAX_MILLI as f64) {
            return Err(format!(
                "resource `{name}`: {amount} is not an amount between 0 and {}",
                MAX_MILLI / 1000
            ));
        }
        out.insert(name, milli.round() as u64);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resources as a user writes them (`{"gpu": 1}`), as thousandths.
    fn parse(json: &str) -> Result<BTreeMap<String, u64>, String> {
        from_units(serde_json::from_str(json).map_err(|e| e.to_string())?)
    }

    fn req(r: &[(&str, u64)]) -> Vec<(String, u64)> {
        r.iter().map(|(n, a)| (n.to_string(), *a)).collect()
    }

    #[test]
    fn parses_units_as_thousandths_and_refuses_bad_input() {
        let r = parse(r#"{"gpu": 2, "disk": 0.5}"#).unwrap();
        assert_eq!(r["gpu"], 2000);
        assert_eq!(r["disk"], 500);
        for bad in [
            r#"{"gpu": -1}"#,
            r#"["gpu"]"#,
            r#"{"CPU": 4}"#,
            r#"{"": 1}"#,
            "{",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(units(1500), "1.5");
        assert_eq!(units(2000), "2");
        assert_eq!(units(1), "0.001");
    }

    #[test]
    fn checks_requests_against_what_the_node_has() {
        let r = Resources::new(&parse(r#"{"gpu": 1}"#).unwrap());
        assert!(r.check(&req(&[("gpu", 1000)])).is_ok());
        assert!(r.check(&req(&[])).is_ok());
        let more = r.check(&req(&[("gpu", 2000)])).unwrap_err();
        assert!(
            more.contains("needs 2 of resource `gpu`, and this node has 1"),
            "{more}"
        );
        assert!(r.check(&req(&[("tpu", 1)])).unwrap_err().contains("has 0"));
        assert!(r.check(&req(&[("gpu", 0)])).is_err());
        assert!(r.check(&req(&[("gpu", 1), ("gpu", 1)])).is_err());
    }

    #[tokio::test]
    async fn grants_in_line_and_takes_back_when_dropped() {
        let r = Arc::new(Resources::new(&parse(r#"{"gpu": 1, "a": 1}"#).unwrap()));
        let half = req(&[("gpu", 500)]);
        let first = r.acquire(&half).await;
        let second = r.acquire(&half).await;
        assert!(!r.free_now(&half));
        assert_eq!(r.usage()["gpu"], (1000, 0));
        let r2 = r.clone();
        let third = tokio::spawn(async move {
            let _held = r2.acquire(&req(&[("a", 1000), ("gpu", 500)])).await;
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished());
        drop(first);
        third.await.unwrap();
        drop(second);
        assert_eq!(r.usage()["gpu"], (1000, 1000));
        assert_eq!(r.usage()["a"], (1000, 1000));
    }
}
