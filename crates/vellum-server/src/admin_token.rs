//! Where the admin token comes from: configuration, or a file generated on first start.

use std::{
    fs::OpenOptions,
    io::{ErrorKind, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use rand::RngCore;

/// The admin token and where it came from.
#[derive(Debug)]
pub enum AdminTokenSource {
    /// Given in configuration (`VELLUM_ADMIN_TOKEN`).
    Configured(String),
    /// Read from the token file of the data directory.
    File(String, PathBuf),
    /// Generated now and written to the token file (mode 0600).
    Generated(String, PathBuf),
}

impl AdminTokenSource {
    /// The token itself.
    pub fn token(&self) -> &str {
        match self {
            Self::Configured(token) | Self::File(token, _) | Self::Generated(token, _) => token,
        }
    }
}

/// The configured token, else `<data_dir>/admin-token`, created with a fresh random token if it
/// does not exist. A configured token must be at least 32 characters.
pub fn admin_token(
    configured: Option<String>,
    data_dir: &Path,
) -> std::io::Result<AdminTokenSource> {
    if let Some(token) = configured {
        if token.trim().len() < 32 {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "VELLUM_ADMIN_TOKEN must be at least 32 characters",
            ));
        }
        return Ok(AdminTokenSource::Configured(token.trim().to_string()));
    }
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => {
            return Ok(AdminTokenSource::File(token.trim().to_string(), path));
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("{} is empty", path.display()),
            ));
        }
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("vlm_admin_{}", hex::encode(bytes));
    // create_new: two servers starting at once cannot overwrite each other's token.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    Ok(AdminTokenSource::Generated(token, path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_token_is_generated_once_with_owner_only_permissions() {
        let dir =
            std::env::temp_dir().join(format!("vellum-admin-{}", uuid::Uuid::new_v4().simple()));
        let first = admin_token(None, &dir).unwrap();
        let AdminTokenSource::Generated(token, path) = &first else {
            panic!("{first:?}")
        };
        assert!(token.starts_with("vlm_admin_") && token.len() == 74);
        assert_eq!(
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let second = admin_token(None, &dir).unwrap();
        assert!(matches!(&second, AdminTokenSource::File(again, _) if again == token));
        let configured = admin_token(Some("x".repeat(40)), &dir).unwrap();
        assert_eq!(configured.token(), "x".repeat(40));
        assert!(admin_token(Some("short".into()), &dir).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
