//! A real MQTT broker for the tests: Debian's Mosquitto, started on a free loopback port with
//! a password file, and its command-line clients to publish and to watch.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// A second listener with TLS (see [`Broker::start_tls`]): its port and the CA that
    /// signed its certificate.
    pub tls: Option<(u16, PathBuf)>,
}

/// The broker's users: (name, password).
pub const WATCHER: (&str, &str) = ("watcher", "watcher-pw");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Broker {
    /// Starts a broker in `dir` that knows `users` (and [`WATCHER`]).
    pub fn start(dir: &Path, users: &[(&str, &str)]) -> Broker {
        let mut b = Broker {
            port: free_port(),
            dir: dir.to_owned(),
            child: None,
            tls: None,
        };
        b.set_users(users);
        b.restart();
        b
    }

    /// As [`Broker::start`], with a TLS listener too, its certificate (for 127.0.0.1) signed
    /// by a CA made here with openssl.
    pub fn start_tls(dir: &Path, users: &[(&str, &str)]) -> Broker {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
        let mut b = Broker {
            port: free_port(),
            dir: dir.to_owned(),
            child: None,
            tls: Some((free_port(), dir.join("ca.pem"))),
        };
        b.set_users(users);
        b.restart();
        b
    }

    /// Writes the password file (the running broker rereads it on SIGHUP).
    pub fn set_users(&self, users: &[(&str, &str)]) {
        let passwd = self.dir.join("passwd");
        let _ = std::fs::remove_file(&passwd);
        for (i, (user, pw)) in users.iter().chain([&WATCHER]).enumerate() {
            let mut cmd = Command::new("mosquitto_passwd");
            cmd.arg("-b");
            if i == 0 {
                cmd.arg("-c");
            }
            let out = cmd
                .arg(&passwd)
                .args([user, pw])
                .output()
                .expect("mosquitto_passwd (scripts/deps.sh installs mosquitto)");
            assert!(out.status.success(), "{out:?}");
        }
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGHUP);
            }
            thread::sleep(Duration::from_millis(300));
        }
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                // `user root`: started as root, Mosquitto would otherwise become the user
                // mosquitto, who cannot read the test's private directory.
                "user root\nlistener {} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
                 persistence false\nlog_dest file {}\nlog_type all\n{}",
                self.port,
                self.dir.join("passwd").display(),
                self.dir.join("mosquitto.log").display(),
                self.tls.as_ref().map_or(String::new(), |(port, _)| format!(
                    "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
                    self.dir.join("ca.pem").display(),
                    self.dir.join("server.pem").display(),
                    self.dir.join("server.key").display()
                ))
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (scripts/deps.sh installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto did not listen"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no goodbye, no will delivered by a clean close.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What the broker logged (the tail).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Publishes as [`WATCHER`], QoS 1.
    pub fn publish(&self, topic: &str, payload: &str, retain: bool) {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-u", WATCHER.0, "-P", WATCHER.1, "-q", "1", "-t", topic, "-m", payload,
            ]);
        if retain {
            cmd.arg("-r");
        }
        let out = cmd.output().expect("mosquitto_pub");
        assert!(out.status.success(), "{out:?}");
    }

    /// Watches `topic` (wildcards allowed) from now on, as [`WATCHER`].
    pub fn watch(&self, topic: &str) -> Watch {
        // Also watched: a topic of its own, to tell when the subscription is in place.
        let marker = format!("test/ready-{}", free_port());
        // Line-buffered: its output is a pipe, which stdio would otherwise fill in blocks.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-u", WATCHER.0, "-P", WATCHER.1, "-q", "1", "-t", topic, "-t", &marker,
            ])
            .args(["-F", "%r %t %p"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let out = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut parts = line.splitn(3, ' ');
                let retained = parts.next() == Some("1");
                let topic = parts.next().unwrap_or_default().to_owned();
                let payload = parts.next().unwrap_or_default().to_owned();
                sink.lock().unwrap().push(Received {
                    retained,
                    topic,
                    payload,
                });
            }
        });
        // Subscribed once a message published now comes back.
        let w = Watch { child, got };
        let start = Instant::now();
        loop {
            self.publish(&marker, "ready", false);
            if w.all().iter().any(|r| r.topic == marker) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto_sub did not subscribe; got {:?}; broker log:\n{}",
                w.all(),
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
        w
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub retained: bool,
    pub topic: String,
    pub payload: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.topic, self.payload))
    }
}

pub struct Watch {
    child: Child,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Watch {
    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received; panics after `limit`.
    #[track_caller]
    pub fn wait(&self, limit: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        super::wait_for(
            limit,
            || self.all(),
            |got| done(got),
            |got| {
                got.iter()
                    .map(|r| format!("{} {}", r.topic, r.payload))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        )
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
