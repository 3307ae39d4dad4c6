//! Progress from the agent's own todo list: each TodoWrite call gives the whole list,
//! so progress is its completed items of all, and a milestone is an item that is
//! completed now and was not in the coder's previous list.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

/// Items of one list looked at; the rest are counted in `total` only.
const MAX_ITEMS: usize = 256;

/// The completed items of a coder's last todo list, as hashes of their text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoList {
    completed: Vec<u64>,
    /// Items in the last list.
    pub total: u32,
    /// Completed items in the last list.
    pub done: u32,
}

/// What one TodoWrite changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoUpdate {
    /// Completed items.
    pub done: u32,
    /// All items.
    pub total: u32,
    /// The item being worked on (`activeForm` of the item in progress), if any.
    pub current: Option<String>,
    /// Items completed since the previous list, in list order.
    pub milestones: Vec<String>,
}

impl TodoList {
    /// Folds in a TodoWrite input (`{"todos": [{"content", "status", ...}]}`); `None`
    /// when it holds no list.
    pub fn update(&mut self, input: &Value) -> Option<TodoUpdate> {
        let items = input.get("todos")?.as_array()?;
        let mut completed = Vec::new();
        let mut milestones = Vec::new();
        let mut current = None;
        let mut done = 0u32;
        for item in items {
            let content = item
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match item.get("status").and_then(Value::as_str) {
                Some("completed") => {
                    done += 1;
                    if completed.len() < MAX_ITEMS {
                        let hash = xxh3_64(content.as_bytes());
                        if !self.completed.contains(&hash) {
                            milestones.push(content.to_owned());
                        }
                        completed.push(hash);
                    }
                }
                Some("in_progress") if current.is_none() => {
                    current = Some(
                        item.get("activeForm")
                            .and_then(Value::as_str)
                            .unwrap_or(content)
                            .to_owned(),
                    );
                }
                _ => {}
            }
        }
        self.completed = completed;
        self.total = u32::try_from(items.len()).unwrap_or(u32::MAX);
        self.done = done;
        Some(TodoUpdate {
            done,
            total: self.total,
            current,
            milestones,
        })
    }

    /// Completed of all, 0 to 1; `None` before any list.
    pub fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| f64::from(self.done) / f64::from(self.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(items: &[(&str, &str)]) -> Value {
        json!({"todos": items.iter().map(|(c, s)| json!({"content": c, "status": s, "activeForm": format!("Doing {c}")})).collect::<Vec<_>>()})
    }

    #[test]
    fn a_milestone_is_an_item_newly_completed() {
        let mut todos = TodoList::default();
        let first = todos
            .update(&list(&[("a", "in_progress"), ("b", "pending")]))
            .unwrap();
        assert_eq!((first.done, first.total), (0, 2));
        assert_eq!(first.current.as_deref(), Some("Doing a"));
        assert!(first.milestones.is_empty());

        let second = todos
            .update(&list(&[
                ("a", "completed"),
                ("b", "in_progress"),
                ("c", "pending"),
            ]))
            .unwrap();
        assert_eq!((second.done, second.total), (1, 3));
        assert_eq!(second.milestones, ["a"]);

        let third = todos
            .update(&list(&[
                ("a", "completed"),
                ("b", "completed"),
                ("c", "completed"),
            ]))
            .unwrap();
        assert_eq!(third.milestones, ["b", "c"], "a was completed before");
        assert_eq!(todos.fraction(), Some(1.0));
        assert!(todos.update(&json!({"nothing": 1})).is_none());
    }
}
