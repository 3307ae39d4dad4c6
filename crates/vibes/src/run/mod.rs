//! `vibes run`'s parts: what it appends and how ([`recorder`]), the price of the agent's
//! API calls so far ([`cost`]), the limits that stop it ([`limits`]), the agent's
//! stdout turned into events ([`pump`]), and how a run's end becomes `run.exit` and an
//! exit status ([`ending`]). The command itself is [`crate::commands::run`].

pub mod cost;
pub mod ending;
pub mod limits;
pub mod pump;
pub mod recorder;
