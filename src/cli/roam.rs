//! Operator commands that talk to Roam: the chats the bot sees (`roam-notify chats`) and
//! the transcript webhook subscription (`roam-notify roam subscribe|unsubscribe`).

use std::fmt::Write as _;

use crate::config::Config;
use crate::roam::{RoamClient, RoamError};

/// The client for `[roam]`, or the sentence saying a key is needed for `what`.
fn client(cfg: &Config, what: &str, scope: &str) -> Result<RoamClient, String> {
    let Some(key) = cfg.roam.api_key.clone() else {
        return Err(format!(
            "{what}: set roam.api_key (or ROAM_NOTIFY_ROAM_API_KEY) to an organization API key with the {scope} scope"
        ));
    };
    RoamClient::new(&cfg.roam, key).map_err(|e| e.to_string())
}

/// One line for a refused call: what Roam said, and the scope it needs.
fn refused(e: RoamError, scope: &str) -> String {
    match e {
        RoamError::Rejected { status: 403, .. } | RoamError::Unauthorized { .. } => {
            format!("{e} (this needs an organization API key with the {scope} scope)")
        }
        other => other.to_string(),
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum RoamCommand {
    /// Ask Roam to post transcript:saved to this daemon (webhook.subscribe). Subscribing
    /// again with the same URL updates the subscription instead of adding one.
    Subscribe {
        /// The URL Roam posts to; default: the roam source's `public_url`.
        #[arg(long)]
        url: Option<String>,
        /// The event (Roam's v0 names).
        #[arg(long, default_value = "transcript.saved")]
        event: String,
    },
    /// Remove a subscription by the id `subscribe` printed (webhook.unsubscribe).
    Unsubscribe { id: String },
}

/// `roam-notify roam subscribe|unsubscribe`.
pub async fn run_roam(cfg: &Config, cmd: RoamCommand) -> Result<String, String> {
    let scope = "webhook:write";
    match cmd {
        RoamCommand::Subscribe { url, event } => {
            let url = match url.or_else(|| cfg.transcript_source_url()) {
                Some(u) => u,
                None => {
                    return Err(format!(
                        "give --url https://<your host>/hooks/{0}, or set public_url on the [[sources]] entry named {0:?} (kind \"roam\")",
                        cfg.transcripts.source
                    ));
                }
            };
            let c = client(cfg, "subscribing needs Roam", scope)?;
            let s = c.webhook_subscribe(&url, &event).await.map_err(|e| match e {
                RoamError::Rejected { status: 400, .. } => format!(
                    "{e} (the URL must be HTTPS outside local environments and at most 255 characters; the event one Roam knows)"
                ),
                other => refused(other, scope),
            })?;
            Ok(format!(
                "subscribed: Roam posts {} to {} (subscription {}; remove it with `roam-notify roam unsubscribe {}`)\n",
                s.event, s.url, s.id, s.id
            ))
        }
        RoamCommand::Unsubscribe { id } => {
            let c = client(cfg, "unsubscribing needs Roam", scope)?;
            if c.webhook_unsubscribe(&id)
                .await
                .map_err(|e| refused(e, scope))?
            {
                Ok(format!("unsubscribed: subscription {id} removed\n"))
            } else {
                Err(format!("Roam has no subscription {id}"))
            }
        }
    }
}

/// `roam-notify chats [--filter TEXT]`: every chat the bot can see (all pages of
/// `chat.list`), as a table of name, kind, chat id and group id, or JSON. The filter
/// keeps chats whose name or id contains it (case-insensitive).
pub async fn run_chats(cfg: &Config, filter: Option<&str>, json: bool) -> Result<String, String> {
    let Some(key) = cfg.roam.api_key.clone() else {
        return Err(
            "chats are listed by Roam: set roam.api_key (or ROAM_NOTIFY_ROAM_API_KEY) to an organization API key with the chat:read scope"
                .into(),
        );
    };
    let client = RoamClient::new(&cfg.roam, key).map_err(|e| e.to_string())?;
    let mut chats = client.chat_list_all().await.map_err(|e| match e {
        RoamError::Rejected { status: 403, .. } | RoamError::Unauthorized { .. } => {
            format!("{e} (listing chats needs an organization API key with the chat:read scope)")
        }
        other => other.to_string(),
    })?;
    if let Some(f) = filter.map(str::to_lowercase) {
        chats.retain(|c| c.name.to_lowercase().contains(&f) || c.id.to_lowercase().contains(&f));
    }
    if json {
        return serde_json::to_string_pretty(&chats)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string());
    }
    if chats.is_empty() {
        return Ok(match filter {
            Some(f) => format!("no chat the bot can see matches {f:?}\n"),
            None => "the bot sees no chat yet: add it to a group or DM it in Roam\n".into(),
        });
    }
    let width = chats
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:width$}  {:8}  {:38}  GROUP\n", "NAME", "KIND", "CHAT");
    for c in &chats {
        let _ = writeln!(
            out,
            "{:width$}  {:8}  {:38}  {}",
            c.name,
            c.kind(),
            c.id,
            c.group.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        out,
        "{} chat(s). In a route, `to` takes the chat id or, for a channel, the group id.",
        chats.len()
    );
    Ok(out)
}
