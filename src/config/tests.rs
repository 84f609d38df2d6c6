use std::path::Path;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const MINIMAL: &str = r#"
[api]
bind = "127.0.0.1:9000"
token = "0123456789abcdef"

[storage]
recordings = "clips"

[[cameras]]
name = "front"
source = "rtsp://admin:secret@192.168.1.10/stream1"
"#;

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::parse(MINIMAL, Path::new("/etc/preroll"), &no_env).expect("valid");
    assert_eq!(c.api.bind.to_string(), "127.0.0.1:9000");
    assert_eq!(c.storage.recordings, Path::new("/etc/preroll/clips"));
    let cam = &c.cameras[0];
    assert_eq!(cam.name, "front");
    assert!(cam.enabled);
    assert_eq!(cam.transport, Transport::Tcp);
    assert_eq!(cam.ring, RingLimits::default());
}

#[test]
fn token_comes_from_the_environment_when_the_file_has_none() {
    let text = MINIMAL.replace("token = \"0123456789abcdef\"\n", "");
    let env = |k: &str| (k == TOKEN_ENV).then(|| "from-the-environment".to_owned());
    let c = Config::parse(&text, Path::new("."), &env).expect("valid");
    assert_eq!(c.api.token, "from-the-environment");
    let problems = Config::parse(&text, Path::new("."), &no_env).expect_err("no token");
    assert_eq!(keys(&problems), ["api.token"]);
    assert!(problems[0].problem.contains(TOKEN_ENV), "{}", problems[0]);
}

#[test]
fn every_problem_is_reported_with_its_key_path() {
    let text = r#"
[api]
bind = "localhost"
token = "short"
colour = "blue"

[storage]
allowed = ["relative/dir", 3]

[[cameras]]
name = "front door"
source = "rtsp://"
transport = "sctp"
preroll_seconds = -1
part_seconds = 0
orientation = 9

[[cameras]]
name = "back"
source = "/no/such/file.mp4"

[[cameras]]
name = "back"
source = "demo"
enabled = "yes"
"#;
    let problems = Config::parse(text, Path::new("/"), &no_env).expect_err("invalid");
    let mut got = keys(&problems);
    got.sort_unstable();
    let mut want = vec![
        "api.bind",
        "api.token",
        "api.colour",
        "storage.recordings",
        "storage.allowed[0]",
        "storage.allowed[1]",
        "cameras[0].name",
        "cameras[0].source",
        "cameras[0].transport",
        "cameras[0].preroll_seconds",
        "cameras[0].part_seconds",
        "cameras[0].orientation",
        "cameras[1].source",
        "cameras[2].enabled",
    ];
    want.sort_unstable();
    assert_eq!(got, want, "{problems:#?}");
}

#[test]
fn duplicate_names_and_missing_sections_are_problems() {
    let text = r#"
[api]
token = "0123456789abcdef"
[[cameras]]
name = "a"
source = "demo"
[[cameras]]
name = "a"
source = "demo"
"#;
    let problems = Config::parse(text, Path::new("/"), &no_env).expect_err("invalid");
    assert_eq!(keys(&problems), ["storage.recordings", "cameras[1].name"]);
    let problems = Config::parse("[api", Path::new("/"), &no_env).expect_err("syntax");
    assert_eq!(keys(&problems), ["(syntax)"]);
    let problems = Config::parse(
        "[api]\ntoken = \"0123456789abcdef\"\n[storage]\nrecordings = \"r\"\n",
        Path::new("/"),
        &no_env,
    )
    .expect_err("no cameras");
    assert_eq!(keys(&problems), ["cameras"]);
}

#[test]
fn credentials_never_show_in_problems() {
    let text = MINIMAL.replace("192.168.1.10/stream1", "");
    let problems = Config::parse(&text, Path::new("/"), &no_env).expect_err("no host");
    let all: String = problems.iter().map(|p| p.to_string()).collect();
    assert!(!all.contains("secret"), "{all}");
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../preroll.example.toml");
    let env = |k: &str| (k == TOKEN_ENV).then(|| "an-example-token-long-enough".to_owned());
    let c = Config::parse(text, Path::new("/srv/preroll"), &env).expect("example is valid");
    assert_eq!(c.cameras.len(), 2);
    assert_eq!(c.storage.recordings, Path::new("/srv/preroll/recordings"));
    assert_eq!(
        c.cameras[1].ring.seconds,
        std::time::Duration::from_secs(15)
    );
}

#[test]
fn webhooks_get_names_defaults_and_their_secret_from_the_environment() {
    let text = format!(
        "{MINIMAL}\n[[webhooks]]\nurl = \"https://hooks.example.net/p\"\n\n\
         [[webhooks]]\nname = \"ha\"\nurl = \"http://ha.local:8123/api/webhook/x\"\n\
         events = [\"clip.done\", \"camera.disconnected\"]\nsecret_env = \"S\"\ntimeout = 3\n"
    );
    let env = |k: &str| (k == "S").then(|| "shh".to_owned());
    let c = Config::parse(&text, Path::new("/"), &env).expect("valid");
    let [first, ha] = &c.webhooks[..] else {
        panic!("two webhooks: {:?}", c.webhooks)
    };
    assert_eq!(first.name, "webhook-1");
    assert_eq!(first.events, None);
    assert_eq!(first.secret, None);
    assert_eq!(first.retry_for, webhooks::DEFAULT_RETRY_FOR);
    assert_eq!(ha.name, "ha");
    assert_eq!(
        ha.events,
        Some(vec![
            crate::service::events::EventKind::ClipDone,
            crate::service::events::EventKind::CameraDisconnected
        ])
    );
    assert_eq!(ha.secret, Some(Secret("shh".into())));
    assert_eq!(ha.timeout, Duration::from_secs(3));
    // The secret never shows in debug output.
    assert!(!format!("{c:?}").contains("shh"));
    // Two with one name.
    let twice = format!("{text}\n[[webhooks]]\nname = \"ha\"\nurl = \"http://x/\"\n");
    let problems = Config::parse(&twice, Path::new("/"), &env).unwrap_err();
    assert_eq!(keys(&problems), ["webhooks[2].name"]);
}

#[test]
fn retention_reads_sizes_and_ages_in_units_and_a_cameras_own_limits() {
    let text = format!(
        "{MINIMAL}retention = {{ max_age = \"36h\", max_bytes = \"2GiB\" }}\n\n\
         [retention]\nmax_age = \"14d\"\nmax_bytes = \"1.5TB\"\ncamera_max_bytes = 5000000\n\
         min_free_percent = 7.5\ninterval = \"2m\"\n"
    );
    let c = Config::parse(&text, Path::new("/"), &no_env).expect("valid");
    let r = &c.retention;
    assert_eq!(r.max_age, Some(Duration::from_secs(14 * 86_400)));
    assert_eq!(r.max_bytes, Some(1_500_000_000_000));
    assert_eq!(r.camera_max_bytes, Some(5_000_000));
    assert_eq!(r.min_free, Some(MinFree::Percent(7.5)));
    assert_eq!(r.interval, Duration::from_secs(120));
    let own = &c.cameras[0].retention;
    assert_eq!(own.max_age, Some(Duration::from_secs(36 * 3600)));
    assert_eq!(own.max_bytes, Some(2 << 30));
    // Off unless asked for.
    let c = Config::parse(MINIMAL, Path::new("/"), &no_env).expect("valid");
    assert!(!c.retention.is_on());
    assert_eq!(table::parse_bytes("500 MB"), Some(500_000_000));
    assert_eq!(table::parse_bytes("10x"), None);
    assert_eq!(table::parse_age("2w"), Some(1_209_600.0));
    assert_eq!(table::parse_age("-1d"), None);
}

#[test]
fn retention_mistakes_are_named_with_their_keys() {
    let text = format!(
        "{MINIMAL}\n[retention]\nmax_age = 0\nmax_bytes = -5\nmin_free_bytes = \"1GB\"\n\
         min_free_percent = 5\ncolour = 1\n"
    );
    let problems = Config::parse(&text, Path::new("/"), &no_env).expect_err("invalid");
    assert_eq!(
        keys(&problems),
        [
            "retention.max_age",
            "retention.max_bytes",
            "retention.min_free_percent",
            "retention.colour"
        ],
        "{problems:?}"
    );
}
