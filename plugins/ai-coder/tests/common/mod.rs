//! Builders of hand-written session, run and coder event streams.
#![allow(dead_code, unreachable_pub)]

use serde_json::{Map, Value, json};
use vibes_events::{
    ApiCall, ApiError, ApiUsage, Event, EventData, EventId, Interrupt, RateLimit, RunExit,
    RunLimit, RunSample, RunStart, SessionEnd, SessionStart, Text, Timestamp, ToolResult, ToolUse,
    TurnDuration,
};
use vibes_plugin::testing::Outcome;

/// The time of second `s` of the test streams.
pub fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_770_000_000 + s).unwrap()
}

/// A stream under construction: each event gets the next second (or the time set with
/// [`Stream::at`]) and an id derived from its position, so building the same stream
/// twice gives the same events.
#[derive(Debug, Default)]
pub struct Stream {
    pub events: Vec<Event>,
    clock: i64,
    tools: u64,
}

impl Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next event is at second `s`.
    pub fn at(&mut self, s: i64) -> &mut Self {
        self.clock = s - 1;
        self
    }

    pub fn push(&mut self, event: Event) -> &mut Self {
        self.clock += 1;
        let when = at(self.clock);
        let key = format!("test/{}", self.events.len());
        let id = EventId::derived(when, key.as_bytes());
        self.events.push(event.with_id(id).with_timestamp(when));
        self
    }

    pub fn start(&mut self, session: &str, model: &str, cwd: &str) -> &mut Self {
        let mut start = SessionStart::new(model, vec!["Bash".into()]);
        start.session_id = Some(session.into());
        start.cwd = Some(cwd.into());
        self.push(Event::claude(start))
    }

    pub fn text(&mut self, session: &str, text: &str, parent: Option<&str>) -> &mut Self {
        let mut t = Text::new(text);
        t.session_id = Some(session.into());
        t.parent_tool_use_id = parent.map(str::to_owned);
        self.push(Event::claude(t))
    }

    /// Text that is a block of API message `message`.
    pub fn text_in(&mut self, session: &str, text: &str, message: &str) -> &mut Self {
        let mut t = Text::new(text);
        t.session_id = Some(session.into());
        t.message_id = Some(message.into());
        self.push(Event::claude(t))
    }

    /// A tool call; returns its id.
    pub fn tool_use(
        &mut self,
        session: &str,
        tool: &str,
        input: Value,
        parent: Option<&str>,
    ) -> String {
        self.tools += 1;
        let tool_id = format!("toolu_{}", self.tools);
        let mut u = ToolUse::new(&tool_id, tool, input);
        u.session_id = Some(session.into());
        u.parent_tool_use_id = parent.map(str::to_owned);
        self.push(Event::claude(u));
        tool_id
    }

    pub fn tool_result(
        &mut self,
        session: &str,
        tool_id: &str,
        content: &str,
        is_error: bool,
        parent: Option<&str>,
    ) -> &mut Self {
        let mut r = ToolResult::new(tool_id, content, is_error);
        r.session_id = Some(session.into());
        r.parent_tool_use_id = parent.map(str::to_owned);
        self.push(Event::claude(r))
    }

    /// A call and its result.
    pub fn tool(
        &mut self,
        session: &str,
        tool: &str,
        input: Value,
        content: &str,
        is_error: bool,
    ) -> String {
        let id = self.tool_use(session, tool, input, None);
        self.tool_result(session, &id, content, is_error, None);
        id
    }

    pub fn todos(&mut self, session: &str, items: &[(&str, &str)]) -> &mut Self {
        let todos: Vec<Value> = items
            .iter()
            .map(|(c, s)| json!({"content": c, "status": s, "activeForm": format!("Doing {c}")}))
            .collect();
        self.tool(
            session,
            "TodoWrite",
            json!({ "todos": todos }),
            "Todos have been modified successfully",
            false,
        );
        self
    }

    /// One copy of API call `message` (request `req_<message>`).
    pub fn call(
        &mut self,
        session: &str,
        agent: Option<&str>,
        message: &str,
        model: &str,
        output: u64,
        stop: Option<&str>,
    ) -> &mut Self {
        let mut c = ApiCall::new(ApiUsage::new(100, output, 1000, 0, 10_000));
        c.session_id = Some(session.into());
        c.agent_id = agent.map(str::to_owned);
        c.is_sidechain = agent.is_some();
        c.message_id = Some(message.into());
        c.request_id = Some(format!("req_{message}"));
        c.model = Some(model.into());
        c.stop_reason = stop.map(str::to_owned);
        self.push(Event::claude(c))
    }

    pub fn api_error(&mut self, session: &str, status: u16, message: &str) -> &mut Self {
        let mut e = ApiError::new(message);
        e.session_id = Some(session.into());
        e.status = Some(status);
        e.retry_attempt = Some(1);
        e.max_retries = Some(10);
        self.push(Event::claude(e))
    }

    pub fn rate_limit(&mut self, session: &str, status: &str) -> &mut Self {
        let mut r = RateLimit::new(status);
        r.session_id = Some(session.into());
        r.rate_limit_type = Some("five_hour".into());
        self.push(Event::claude(r))
    }

    pub fn turn(&mut self, session: &str, ms: u64) -> &mut Self {
        let mut t = TurnDuration::new(ms);
        t.session_id = Some(session.into());
        self.push(Event::claude(t))
    }

    pub fn interrupt(&mut self, session: &str) -> &mut Self {
        let mut i = Interrupt::default();
        i.session_id = Some(session.into());
        self.push(Event::claude(i))
    }

    pub fn end(&mut self, session: &str, is_error: bool, subtype: &str) -> &mut Self {
        let mut e = SessionEnd::new(session, 4, 60_000, 0.5);
        e.is_error = is_error;
        e.subtype = Some(subtype.into());
        if is_error {
            e.errors = Some(vec!["Reached maximum number of turns (4)".into()]);
        }
        self.push(Event::claude(e))
    }

    pub fn run_start(&mut self, run: &str, name: Option<&str>, max_rss: Option<u64>) -> &mut Self {
        let mut s = RunStart::new(run, vec!["claude".into(), "-p".into()]);
        s.name = name.map(str::to_owned);
        s.max_rss_bytes = max_rss;
        self.push(Event::internal(s))
    }

    pub fn sample(
        &mut self,
        run: &str,
        session: Option<&str>,
        rss: u64,
        cost: Option<f64>,
    ) -> &mut Self {
        let mut s = RunSample::new(run);
        s.session_id = session.map(str::to_owned);
        s.processes = 3;
        s.cpu_ms = 1500;
        s.cpu_percent = 42.5;
        s.rss_bytes = rss;
        s.open_files = 17;
        s.cost_usd = cost;
        self.push(Event::internal(s))
    }

    pub fn limit(
        &mut self,
        run: &str,
        session: Option<&str>,
        limit: &str,
        observed: f64,
        threshold: f64,
    ) -> &mut Self {
        let mut l = RunLimit::new(run, limit, observed, threshold);
        l.session_id = session.map(str::to_owned);
        self.push(Event::internal(l))
    }

    pub fn exit(
        &mut self,
        run: &str,
        session: Option<&str>,
        code: Option<i32>,
        stopped_by: Option<&str>,
    ) -> &mut Self {
        let mut e = RunExit::new(run, 5000);
        e.session_id = session.map(str::to_owned);
        e.code = code;
        e.signal = code.is_none().then_some(15);
        e.stopped_by = stopped_by.map(str::to_owned);
        self.push(Event::internal(e))
    }

    /// A coder event as another producer writes it into the event topic.
    pub fn coder_event(&mut self, event_type: &str, fields: Value) -> &mut Self {
        let mut event = Event::new(
            "test",
            EventData::Unknown {
                event_type: event_type.into(),
            },
        );
        if let Value::Object(map) = fields {
            event.extra = map;
        }
        self.push(event)
    }
}

/// The events of one output topic as JSON.
pub fn json_of(out: &Outcome, topic: &str) -> Vec<Value> {
    out.topic(topic)
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// The types of one output topic, in order.
pub fn types_of(out: &Outcome, topic: &str) -> Vec<String> {
    out.topic(topic)
        .iter()
        .map(|e| e.event_type().to_owned())
        .collect()
}

/// The events of `topic` of type `ty`.
pub fn of_type(out: &Outcome, topic: &str, ty: &str) -> Vec<Value> {
    json_of(out, topic)
        .into_iter()
        .filter(|e| e["type"] == ty)
        .collect()
}

/// An empty JSON object.
pub fn object() -> Map<String, Value> {
    Map::new()
}
