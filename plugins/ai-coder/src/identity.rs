//! Which coder an event belongs to: a Claude session is a coder (its id is the session
//! id), each of its subagents a child coder (`<session>/<agent>`), and a supervised run
//! that never reported a session a coder of its own (`run:<run_id>`).

use serde_json::Value;
use vibes_events::{Event, EventData};
use vibes_plugin::PluginError;

/// The agent key of events on a 1.x side chain, which name no agent.
pub const SIDECHAIN: &str = "sidechain";

/// The coder an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoderKey {
    /// The Claude session (the main coder's id).
    pub session_id: String,
    /// The subagent within it, if the event is a subagent's: its `agent_id`
    /// (transcripts 2.1), the Task call that spawned it (`parent_tool_use_id`,
    /// stream-json), or [`SIDECHAIN`] (a 1.x side-chain line, which names neither).
    pub agent: Option<String>,
}

impl CoderKey {
    /// The coder's id.
    pub fn coder_id(&self) -> String {
        match &self.agent {
            Some(agent) => child_id(&self.session_id, agent),
            None => self.session_id.clone(),
        }
    }
}

/// The id of subagent `agent` of session `session`.
pub fn child_id(session: &str, agent: &str) -> String {
    format!("{session}/{agent}")
}

/// The id of a run that never reported a session.
pub fn run_coder_id(run_id: &str) -> String {
    format!("run:{run_id}")
}

/// The coder of a session or Claude event. Errors: the event names no session, so no
/// coder can be told (it goes to the dead letters rather than to a made-up coder).
pub fn of(event: &Event) -> Result<CoderKey, PluginError> {
    let session_id = event
        .partition_key()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            PluginError::new(format!(
                "a {} event without a session_id belongs to no coder",
                event.event_type()
            ))
        })?
        .to_owned();
    Ok(CoderKey {
        session_id,
        agent: agent_of(event),
    })
}

fn agent_of(event: &Event) -> Option<String> {
    let field = match &event.data {
        EventData::ApiCall(c) => c
            .agent_id
            .clone()
            .or_else(|| c.is_sidechain.then(|| SIDECHAIN.to_owned())),
        EventData::ApiError(e) => e.agent_id.clone(),
        EventData::TurnDuration(t) => t.agent_id.clone(),
        EventData::Interrupt(i) => i.agent_id.clone(),
        EventData::Text(t) => t.parent_tool_use_id.clone(),
        EventData::ToolUse(t) => t.parent_tool_use_id.clone(),
        EventData::ToolResult(t) => t.parent_tool_use_id.clone(),
        _ => None,
    };
    field.filter(|a| !a.is_empty()).or_else(|| {
        // Transcripts put `agent_id` and `is_sidechain` beside the fields of types that
        // have none for them.
        match event.extra.get("agent_id") {
            Some(Value::String(a)) if !a.is_empty() => Some(a.clone()),
            _ => (event.extra.get("is_sidechain") == Some(&Value::Bool(true)))
                .then(|| SIDECHAIN.to_owned()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vibes_events::{ApiCall, ApiUsage, Text, ToolUse};

    #[test]
    fn sessions_subagents_and_side_chains_are_told_apart() {
        let mut text = Text::new("hi");
        text.session_id = Some("s1".into());
        let main = Event::claude(text.clone());
        assert_eq!(of(&main).unwrap().coder_id(), "s1");

        text.parent_tool_use_id = Some("toolu_9".into());
        assert_eq!(of(&Event::claude(text)).unwrap().coder_id(), "s1/toolu_9");

        let mut call = ApiCall::new(ApiUsage::default());
        call.session_id = Some("s1".into());
        call.is_sidechain = true;
        assert_eq!(
            of(&Event::claude(call.clone())).unwrap().coder_id(),
            "s1/sidechain"
        );
        call.agent_id = Some("aac57f5".into());
        assert_eq!(of(&Event::claude(call)).unwrap().coder_id(), "s1/aac57f5");

        let mut tool = ToolUse::new("t", "Read", json!({}));
        tool.session_id = Some("s1".into());
        let tagged = Event::claude(tool).with_extra("agent_id", "a1");
        assert_eq!(of(&tagged).unwrap().coder_id(), "s1/a1");

        let orphan = Event::claude(Text::new("no session"));
        assert!(
            of(&orphan)
                .unwrap_err()
                .message()
                .contains("without a session_id")
        );
    }
}
