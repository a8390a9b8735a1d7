//! The webhook channel: an HTTP POST of the message's JSON.

use std::time::Duration;

/// Why a try failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// A connection error, a time-out or a 5xx: worth another try.
    Retry(String),
    /// A 4xx (or a URL the client cannot use): the receiver refused it.
    Final(String),
}

impl Failed {
    pub fn text(&self) -> &str {
        match self {
            Failed::Retry(t) | Failed::Final(t) => t,
        }
    }
}

/// POSTs `body` (JSON) to `url`; only a 2xx answer counts as sent.
pub fn post(url: &str, body: &str, timeout: Duration) -> Result<u16, Failed> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("blackbox/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let answer = agent.post(url).header("content-type", "application/json").send(body);
    match answer {
        Ok(resp) => {
            let code = resp.status().as_u16();
            match code {
                200..=299 => Ok(code),
                400..=499 => Err(Failed::Final(format!("{url} answered {code} (a refusal: not tried again)"))),
                _ => Err(Failed::Retry(format!("{url} answered {code}"))),
            }
        }
        Err(e @ (ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_))) => Err(Failed::Final(format!("{url}: {e}"))),
        Err(e) => Err(Failed::Retry(format!("{url}: {e}"))),
    }
}
