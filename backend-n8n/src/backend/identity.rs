//! Task ids bound to their dispatch.
//!
//! An n8n task id is `<instance>:<dispatch uuid>[:<execution id>].<signature>`, or
//! `<instance>:e<execution id>.<signature>` for an execution `list` found without our mark
//! (started outside the orchestrator): the signature is the first 16 bytes (hex) of
//! HMAC-SHA256 over `<instance>:<body>`,
//! keyed by `id_key` when set, else by the n8n URL. Any process configured for the same
//! deployment verifies the ids another issued, across restarts, with nothing stored; a
//! made-up id, or an execution id spliced onto another dispatch, fails the check and is
//! `NotFound`. The URL binds ids to the deployment but is no secret: set `id_key` to make
//! ids unforgeable. Credentials are deliberately not used: adding or rotating an API key
//! must not invalidate the ids already handed out (a test caught exactly that).

use hmac::{Hmac, KeyInit, Mac};

use super::*;

/// Signature bytes kept (128 bits).
const SIG_BYTES: usize = 16;

/// The key ids are signed with, from the configuration (see the module docs).
pub(crate) fn id_key(config: &N8nConfig) -> Vec<u8> {
    let secret = config.id_key.as_ref().map(|s| s.expose().to_string());
    // Domain-separated, so the key material never signs anything else as is.
    format!(
        "orchestrator n8n task ids|{}",
        secret.unwrap_or_else(|| config.base().to_string())
    )
    .into_bytes()
}

fn mac(key: &[u8], body: &str) -> Hmac<sha2::Sha256> {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body.as_bytes());
    mac
}

impl N8nBackend {
    /// The signed task id of dispatch `dispatch` (and execution `exec`, once n8n named it).
    pub(crate) fn task_id(&self, dispatch: &str, exec: Option<&str>) -> Result<TaskId> {
        let name = &self.inner.name;
        let body = match exec {
            Some(e) => format!("{dispatch}:{e}"),
            None => dispatch.to_string(),
        };
        let sig = mac(&self.inner.id_key, &format!("{name}:{body}")).finalize();
        let sig = hex::encode(&sig.into_bytes()[..SIG_BYTES]);
        Ok(TaskId::new(name, &format!("{body}.{sig}"))?)
    }

    /// The id `list` gives execution `exec` when it carries no mark of ours.
    pub(crate) fn external_id(&self, exec: &str) -> Result<TaskId> {
        let name = &self.inner.name;
        let body = format!("e{exec}");
        let sig = mac(&self.inner.id_key, &format!("{name}:{body}")).finalize();
        let sig = hex::encode(&sig.into_bytes()[..SIG_BYTES]);
        Ok(TaskId::new(name, &format!("{body}.{sig}"))?)
    }

    /// `(dispatch, execution)` of an id this deployment issued (the dispatch is empty in
    /// the `e<execution>` form). Malformed ids are
    /// `InvalidTaskId`; well-formed ids with a wrong signature are `NotFound`.
    pub(crate) fn verify<'a>(&self, id: &'a TaskId) -> Result<(&'a str, Option<&'a str>)> {
        let malformed = || {
            Error::from(TaskIdError::Malformed {
                id: id.to_string(),
                reason:
                    "an n8n task id is `<instance>:<dispatch uuid>[:<execution id>].<signature>` or `<instance>:e<execution id>.<signature>`"
                        .into(),
            })
        };
        let (body, sig) = id.native().rsplit_once('.').ok_or_else(malformed)?;
        // The two forms cannot be confused: a dispatch is a hyphenated UUID (36 characters
        // with `-`), an `e<execution>` body has digits only after its `e`.
        let external = body
            .strip_prefix('e')
            .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()));
        let (dispatch, exec) = match (external, body.split_once(':')) {
            (Some(e), _) => ("", Some(e)),
            (None, Some((d, e))) => (d, Some(e)),
            (None, None) => (body, None),
        };
        if (external.is_none()
            && (dispatch.len() != 36 || uuid::Uuid::parse_str(dispatch).is_err()))
            || exec.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(malformed());
        }
        let sig = hex::decode(sig)
            .ok()
            .filter(|s| s.len() == SIG_BYTES)
            .ok_or_else(malformed)?;
        mac(&self.inner.id_key, &format!("{}:{body}", self.inner.name))
            .verify_truncated_left(&sig)
            .map_err(|_| Error::not_found(id))?;
        Ok((dispatch, exec))
    }
}
