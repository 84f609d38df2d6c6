//! Browser sessions on a real `preroll serve`: the token exchanged for a cookie, which works
//! for reading and, from the service's own pages only, for acting; logout; and the brake on
//! wrong tokens.

mod common;

use common::serve::{Service, TOKEN, config};

const DEMO: &str = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n";

#[test]
fn a_session_cookie_reads_acts_only_from_its_own_origin_and_ends_at_logout() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    let host = svc.base.trim_start_matches("http://").to_owned();
    let own_origin = svc.base.clone();

    let wrong = svc.request(
        "POST",
        "/api/session",
        None,
        &[],
        Some(r#"{"token": "not it"}"#),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let login = svc.request(
        "POST",
        "/api/session",
        None,
        &[],
        Some(&format!(r#"{{"token": "{TOKEN}"}}"#)),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let set = login.header("set-cookie").expect("a cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    assert!(
        cookie.starts_with("preroll_session=") && cookie.len() == 16 + 64,
        "{cookie}"
    );

    // Reading with the cookie, and nothing without it.
    let with = |method: &str, path: &str, extra: &[(&str, &str)], body: Option<&str>| {
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        svc.request(method, path, None, &headers, body)
    };
    assert_eq!(with("GET", "/api/cameras", &[], None).status, 200);
    assert_eq!(
        svc.request("GET", "/api/cameras", None, &[], None).status,
        401
    );

    // Acting: only from its own pages.
    let clip = r#"{"duration": 1, "lookback": 0}"#;
    let path = "/api/cameras/demo/clips";
    let no_origin = with("POST", path, &[], Some(clip));
    assert_eq!(no_origin.status, 403, "{}", no_origin.text());
    assert_eq!(
        with(
            "POST",
            path,
            &[("Origin", "http://evil.example")],
            Some(clip)
        )
        .status,
        403
    );
    assert_eq!(
        with(
            "POST",
            path,
            &[("Origin", &own_origin), ("Sec-Fetch-Site", "cross-site")],
            Some(clip)
        )
        .status,
        403
    );
    assert_eq!(
        with(
            "POST",
            path,
            &[("Sec-Fetch-Site", "same-origin")],
            Some(clip)
        )
        .status,
        201
    );
    let from_own = with(
        "POST",
        path,
        &[("Origin", &own_origin), ("Host", &host)],
        Some(clip),
    );
    assert_eq!(from_own.status, 201, "{}", from_own.text());
    // The bearer API is as before.
    assert_eq!(svc.post(path, clip).status, 201);

    // Logout ends the session and clears the cookie.
    let out = with("DELETE", "/api/session", &[], None);
    assert_eq!(out.status, 204);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let after = with("GET", "/api/cameras", &[], None);
    assert_eq!(after.status, 401);
    assert!(after.text().contains("log in again"), "{}", after.text());
}

#[test]
fn wrong_tokens_are_braked_per_address() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    for _ in 0..10 {
        assert_eq!(
            svc.request("GET", "/api/cameras", Some("guess-guess-guess"), &[], None)
                .status,
            401
        );
    }
    // Now even the right token (and a login) is refused from this address for a while.
    let braked = svc.get("/api/cameras");
    assert_eq!(braked.status, 429, "{}", braked.text());
    let wait: u64 = braked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert!(braked.text().contains("wrong tokens"), "{}", braked.text());
    let login = svc.request(
        "POST",
        "/api/session",
        None,
        &[],
        Some(&format!(r#"{{"token": "{TOKEN}"}}"#)),
    );
    assert_eq!(login.status, 429);
    // What needs no token is not braked.
    assert_eq!(svc.request("GET", "/healthz", None, &[], None).status, 200);
}
