//! Black-box tests: the real router over real HTTP (and the real binary where a process
//! must die), against a fake Roam API that records requests, validates them against
//! Roam's published `chat.json`, and fails on demand.

mod blockkit;
mod helpers;
mod names;

mod admin;
mod admin_auth;
mod alerts;
mod architecture;
mod binary;
mod cards;
mod chats;
mod cli;
mod console;
mod console_browser;
mod container;
mod delivery;
mod hardening;
mod hooks;
mod hubspot;
mod message_text;
mod noise;
mod process;
mod quiet;
mod reads;
mod reload;
mod replicas;
mod roam_webhooks;
mod sources;
mod transcripts;
