//! Opening the object store a warehouse lives in: a local folder by default, or a URL
//! (`file://`, `s3://`, `gs://`, `az://` and the other spellings `object_store` knows).
//!
//! Credentials come from the services' usual environment variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`) through the builders' `from_env`; nothing here reads a
//! credentials file of its own or logs a secret.
//!
//! Must never: create buckets, or write anything (opening is read-free and write-free).

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreScheme};
use url::Url;

use super::WarehouseError;

/// An opened store plus what a reader needs to know about where it is.
pub struct OpenedStore {
    pub store: Arc<dyn ObjectStore>,
    /// The folder on this machine when the warehouse is local (a path or `file://`), so
    /// readers such as DuckDB can read its files in place.
    pub local_root: Option<PathBuf>,
}

/// Opens `location`: a URL with a scheme, or else a path to a local folder (created if
/// missing, since a fresh machine's first run must work).
pub fn open(location: &str) -> Result<OpenedStore, WarehouseError> {
    match Url::parse(location) {
        // A Windows drive letter (`C:\data`) parses as a one-letter scheme: a path.
        Ok(url) if url.scheme().len() > 1 => open_url(location, &url),
        _ => open_folder(location, PathBuf::from(location)),
    }
}

fn open_url(location: &str, url: &Url) -> Result<OpenedStore, WarehouseError> {
    let bad = |reason: String| WarehouseError::Open { location: location.to_string(), reason };
    let (scheme, prefix) = ObjectStoreScheme::parse(url).map_err(|e| bad(e.to_string()))?;
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => {
            let path = url.to_file_path().map_err(|()| bad("not a local file path".into()))?;
            return open_folder(location, path);
        }
        ObjectStoreScheme::AmazonS3 => {
            Arc::new(AmazonS3Builder::from_env().with_url(url.as_str()).build().map_err(|e| bad(e.to_string()))?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            GoogleCloudStorageBuilder::from_env().with_url(url.as_str()).build().map_err(|e| bad(e.to_string()))?,
        ),
        ObjectStoreScheme::MicrosoftAzure => {
            Arc::new(MicrosoftAzureBuilder::from_env().with_url(url.as_str()).build().map_err(|e| bad(e.to_string()))?)
        }
        other => {
            return Err(bad(format!("unsupported scheme {other:?}, expected a folder, file://, s3://, gs:// or az://")))
        }
    };
    // The builders take the bucket from the URL but not the path inside it: that is the
    // warehouse's root, so every key is put under it.
    let store = if prefix.as_ref().is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) };
    Ok(OpenedStore { store, local_root: None })
}

fn open_folder(location: &str, path: PathBuf) -> Result<OpenedStore, WarehouseError> {
    let bad = |reason: String| WarehouseError::Open { location: location.to_string(), reason };
    std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create folder: {e}")))?;
    let root = std::fs::canonicalize(&path).map_err(|e| bad(format!("cannot resolve folder: {e}")))?;
    let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| bad(e.to_string()))?;
    Ok(OpenedStore { store: Arc::new(store), local_root: Some(root) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_path_opens_a_local_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("wh");
        let opened = open(target.to_str().expect("utf-8 path")).expect("open");
        let root = opened.local_root.expect("local root");
        assert!(root.is_dir());
        assert_eq!(root, std::fs::canonicalize(&target).expect("canonical"));
    }

    #[test]
    fn a_file_url_opens_the_same_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = Url::from_directory_path(dir.path()).expect("url");
        let opened = open(url.as_str()).expect("open");
        assert_eq!(opened.local_root, Some(std::fs::canonicalize(dir.path()).expect("canonical")));
    }

    #[test]
    fn an_unsupported_scheme_is_refused_with_the_location() {
        let err = open("ftp://example.com/x").err().expect("refused");
        let text = err.to_string();
        assert!(text.contains("ftp://example.com/x"), "{text}");
    }

    #[test]
    fn an_s3_url_opens_without_network_io() {
        // Building a client sends no request, so this runs offline.
        let opened = open("s3://bucket-name/some/prefix").expect("s3 store");
        assert!(opened.local_root.is_none());
    }
}
