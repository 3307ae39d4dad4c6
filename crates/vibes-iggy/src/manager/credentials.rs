//! The root credentials of a managed server: made once, kept private, refused when
//! others may read them or they are damaged.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use super::ManagerError;
use super::layout::{Layout, write_atomically};
use crate::config::Secret;

/// A new root password: 32 bytes from the OS random source, as 64 hex digits.
fn random_password() -> io::Result<Secret> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Secret::new(hex))
}

/// The root password of the server in `layout`: read from its credentials file, or, on
/// the first start, generated and stored there (mode 0600 from creation on). Refuses
/// a file that group or others may read, and a server whose data exists without its
/// file.
pub(super) fn root_password(layout: &Layout) -> Result<Secret, ManagerError> {
    let path = &layout.credentials;
    let failed = |source| ManagerError::Credentials {
        path: path.clone(),
        source,
    };
    match fs::metadata(path) {
        Ok(meta) => {
            if meta.mode() & 0o077 != 0 {
                return Err(failed(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "group or others may access it (mode {:04o}); make it private with \
                         `chmod 600 {}`",
                        meta.mode() & 0o7777,
                        path.display()
                    ),
                )));
            }
            let text = fs::read_to_string(path).map_err(failed)?;
            let password = text.trim_end_matches(['\n', '\r']);
            let valid = (3..=100).contains(&password.len())
                && password.chars().all(|c| c.is_ascii_graphic());
            if !valid {
                return Err(failed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "it does not hold one password of 3 to 100 printable characters; \
                     restore it from a backup",
                )));
            }
            Ok(Secret::new(password))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if layout.server_initialized() {
                return Err(ManagerError::CredentialsLost {
                    path: path.clone(),
                    server_dir: layout.server_dir.clone(),
                });
            }
            let password = random_password().map_err(failed)?;
            write_atomically(path, &format!("{}\n", password.expose()), 0o600).map_err(failed)?;
            tracing::info!(
                path = %path.display(),
                "generated the root credentials of the managed iggy-server"
            );
            Ok(password)
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    use super::super::layout::tests::layout;
    use super::*;

    #[test]
    fn the_root_password_is_made_once_private_and_then_reused() {
        let (_dir, layout) = layout();
        let first = root_password(&layout).unwrap();
        assert_eq!(first.expose().len(), 64);
        assert!(first.expose().chars().all(|c| c.is_ascii_hexdigit()));
        let meta = fs::metadata(&layout.credentials).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::read_to_string(&layout.credentials).unwrap(),
            format!("{}\n", first.expose())
        );
        let again = root_password(&layout).unwrap();
        assert_eq!(again, first);
        // No temporary file is left beside it.
        let names: Vec<_> = fs::read_dir(&layout.data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["root-credentials"]);
    }

    #[test]
    fn generated_passwords_differ() {
        let (a, b) = (random_password().unwrap(), random_password().unwrap());
        assert_ne!(a, b);
    }

    #[test]
    fn a_credentials_file_others_can_read_is_refused() {
        let (_dir, layout) = layout();
        root_password(&layout).unwrap();
        fs::set_permissions(&layout.credentials, fs::Permissions::from_mode(0o644)).unwrap();
        let err = root_password(&layout).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        let refused = matches!(err, ManagerError::Credentials { .. });
        assert!(refused, "{err:?}");
    }

    #[test]
    fn a_damaged_credentials_file_is_refused() {
        let (_dir, layout) = layout();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&layout.credentials)
            .unwrap();
        file.write_all(b"two words\n").unwrap();
        let err = root_password(&layout).unwrap_err();
        assert!(err.to_string().contains("restore it"), "{err}");
    }

    #[test]
    fn server_data_without_its_credentials_is_not_given_a_new_password() {
        let (_dir, layout) = layout();
        let state = layout.server_dir.join("state");
        fs::create_dir_all(&state).unwrap();
        fs::write(state.join("log"), b"entries").unwrap();
        let err = root_password(&layout).unwrap_err();
        let lost = matches!(err, ManagerError::CredentialsLost { .. });
        assert!(lost, "{err:?}");
        assert!(err.to_string().contains("Restore that file"), "{err}");
        assert!(!layout.credentials.exists());
    }
}
