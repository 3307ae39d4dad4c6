//! Well-known values of an event's `source` field.
//!
//! `source` is an open string: any producer may name itself. These constants are the
//! names the seed taxonomy defines, plus the vibes host's own.

/// Events parsed from Claude Code's stream-json output.
pub const CLAUDE: &str = "claude";

/// Events derived from the bd (beads) issue tracker.
pub const BD: &str = "bd";

/// Events of the drain orchestrator (drain.*, iteration.*). The seed calls this source
/// `SourceInternal` and names it after atari, the bead drainer it was written for.
pub const INTERNAL: &str = "atari";

/// Events the vibes host emits about itself.
pub const VIBES: &str = "vibes";
