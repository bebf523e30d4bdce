//! Talking to a running node: where it is, its token, JSON over HTTP.
//! Answers are read as the API's types (`wray_runtime::node::types`), or
//! as plain JSON where the CLI prints what the node sent.

use anyhow::{Context, anyhow, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use wray_runtime::node::types::ApiError;

/// Where a node keeps its address, pid and token: `$WRAY_STATE_DIR`, else
/// `$XDG_RUNTIME_DIR/wray`, else `/tmp/wray-<uid>`.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WRAY_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("wray");
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("wray-{uid}"))
}

/// The file naming the running node: `{"pid": .., "url": ..}`.
pub fn node_file() -> PathBuf {
    state_dir().join("node.json")
}

/// The file holding the node's token (mode 0600).
pub fn token_file() -> PathBuf {
    state_dir().join("node.token")
}

/// A client of one node.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the node at `address` (a URL or `host:port`), else
    /// `$WRAY_ADDRESS`, else the node this machine started, else
    /// `http://127.0.0.1:8265`. The token comes from `$WRAY_TOKEN`, else
    /// the node's token file.
    pub fn new(address: Option<&str>) -> Client {
        let address = address
            .map(str::to_string)
            .or_else(|| std::env::var("WRAY_ADDRESS").ok())
            .or_else(|| {
                let v: Value = serde_json::from_slice(&std::fs::read(node_file()).ok()?).ok()?;
                v["url"].as_str().map(str::to_string)
            })
            .unwrap_or_else(|| "http://127.0.0.1:8265".into());
        let base = if address.contains("://") {
            address
        } else {
            format!("http://{address}")
        };
        let token = std::env::var("WRAY_TOKEN").ok().or_else(|| {
            std::fs::read_to_string(token_file())
                .ok()
                .map(|t| t.trim().to_string())
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn finish<T: DeserializeOwned>(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<T> {
        let mut resp = r.map_err(|e| match e {
            ureq::Error::ConnectionFailed | ureq::Error::Io(_) => anyhow!(
                "no wray node answers at {} (start one with `wray start`, or pass --address)",
                self.base
            ),
            e => anyhow!("request to {} failed: {e}", self.base),
        })?;
        let status = resp.status();
        let body: Value = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_json()
            .with_context(|| format!("the node at {} sent a body that is not JSON", self.base))?;
        if !status.is_success() {
            let msg = serde_json::from_value::<ApiError>(body).map(|e| e.error);
            let msg = msg.as_deref().unwrap_or("no message");
            bail!("the node answered {status}: {msg}");
        }
        serde_json::from_value(body).with_context(|| {
            format!(
                "the node at {} sent an answer this wray does not understand",
                self.base
            )
        })
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    /// `GET path`, read as a `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.get_query(path, &[])
    }

    /// `GET path?query` (each key and value percent-encoded), read as a
    /// `T`.
    pub fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let req = self.auth(self.agent.get(format!("{}{path}", self.base)));
        self.finish(req.query_pairs(query.iter().copied()).call())
    }

    /// `POST path` with a JSON body, the answer read as a `T`.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        let req = self.auth(self.agent.post(format!("{}{path}", self.base)));
        self.finish(req.send_json(body))
    }

    /// `DELETE path`, the answer read as a `T`.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let req = self.auth(self.agent.delete(format!("{}{path}", self.base)));
        self.finish(req.call())
    }

    /// `POST path?query` with a wasm module as the body, the answer read
    /// as a `T`.
    pub fn post_wasm<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        module: &[u8],
    ) -> anyhow::Result<T> {
        let req = self
            .auth(self.agent.post(format!("{}{path}", self.base)))
            .query_pairs(query.iter().copied())
            .header("Content-Type", "application/wasm");
        self.finish(req.send(module))
    }
}

/// What a path segment keeps as it is: letters, digits, `-`, `_`, `~`.
/// Everything else, `/`, `?`, `#`, `%` and `.` included, is
/// percent-encoded, so any text (a job id a user typed) names one segment.
const SEGMENT_KEEPS: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// `s` as one path segment of a URL.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT_KEEPS).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_cannot_end_the_path_or_climb_out_of_it() {
        assert_eq!(segment("job-3"), "job-3");
        assert_eq!(segment("a/b?c #d%e"), "a%2Fb%3Fc%20%23d%25e");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
