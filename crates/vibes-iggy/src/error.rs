//! Iggy errors as [`LogError`]s, classified by variant (never by message text).

use iggy::prelude::IggyError;
use vibes_log::{LogError, Missing};

/// Whether the error means the server could not be reached or the connection broke:
/// worth retrying, and what sends appends to the outbox.
pub(crate) fn is_connection_error(error: &IggyError) -> bool {
    std::matches!(
        error,
        IggyError::Disconnected
            | IggyError::CannotEstablishConnection
            | IggyError::NotConnected
            | IggyError::ConnectionClosed
            | IggyError::TcpError
            | IggyError::StaleClient
            | IggyError::Unauthenticated
            | IggyError::IoError(_)
            | IggyError::TaskTimeout
    )
}

/// What kind of vibes thing the error says does not exist, if it says so: a missing
/// stream or topic is a missing vibes topic (`stream/topic`).
pub(crate) fn missing(error: &IggyError) -> Option<Missing> {
    match error {
        IggyError::StreamIdNotFound(_)
        | IggyError::StreamNameNotFound(_)
        | IggyError::TopicIdNotFound(..)
        | IggyError::TopicNameNotFound(..) => Some(Missing::Topic),
        IggyError::PartitionNotFound(..) => Some(Missing::Partition),
        IggyError::ConsumerGroupIdNotFound(..) | IggyError::ConsumerGroupNameNotFound(..) => {
            Some(Missing::Group)
        }
        _ => None,
    }
}

/// `error` with what was being done.
pub(crate) fn from_iggy(error: IggyError, context: impl Into<String>) -> LogError {
    let context = context.into();
    if let Some(kind) = missing(&error) {
        return LogError::NotFound {
            kind,
            what: format!("{context} ({error})"),
        };
    }
    LogError::Backend {
        message: format!("{context}: {error}"),
        transient: is_connection_error(&error),
        source: Some(Box::new(error)),
    }
}

/// The Iggy error inside `error`, if it came from one.
pub(crate) fn iggy_error(error: &LogError) -> Option<&IggyError> {
    match error {
        LogError::Backend {
            source: Some(source),
            ..
        } => source.downcast_ref::<IggyError>(),
        _ => None,
    }
}

/// Whether the server no longer knows this client as a member of the group (it
/// restarted, or the connection was re-established): the member must join again.
pub(crate) fn is_member_lost(error: &LogError) -> bool {
    let lost = iggy_error(error).map(|e| {
        std::matches!(
            e,
            IggyError::ConsumerGroupMemberNotFound(..) | IggyError::StaleClient
        )
    });
    lost == Some(true)
}
