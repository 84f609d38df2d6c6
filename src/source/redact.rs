//! Credentials never reach logs or API responses: every URL is shown through [`redact_url`].

/// Query keys whose values are secrets (as Home Assistant redacts them).
const SECRET_KEYS: [&str; 3] = ["auth", "user", "password"];

/// `rtsp://user:pass@host/p?user=a&x=1` → `rtsp://****:****@host/p?user=****&x=1`.
/// Works on text that is not a valid URL too (it is used on error messages).
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Userinfo: "scheme://userinfo@".
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let authority_end = rest.find(['/', '?', '#', ' ']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some(_) => out.push_str("****:****"),
                None => out.push_str("****"),
            }
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    redact_query(&out)
}

/// Text a camera chose (SDP, header values, reason phrases, server strings) as it may appear in
/// a log line or an error: at most `max` characters, every control character, backslash and
/// non-ASCII byte escaped, so a camera can neither forge log lines nor flood the log.
pub fn camera_text(bytes: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max) + 16);
    for (i, &b) in bytes.iter().enumerate() {
        if out.len() >= max {
            out.push_str(&format!("…({} more bytes)", bytes.len() - i));
            break;
        }
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

fn redact_query(text: &str) -> String {
    let Some(q) = text.find('?') else {
        return text.to_owned();
    };
    let (head, query) = text.split_at(q + 1);
    let end = query.find([' ', '#']).unwrap_or(query.len());
    let (query, tail) = query.split_at(end);
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                format!("{k}=****")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}{}{tail}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn home_assistant_cases() {
        assert_eq!(
            redact_url("https://abcd:efgh@foo.bar"),
            "https://****:****@foo.bar"
        );
        assert_eq!(
            redact_url("https://foo.bar?user=abcd&password=efgh"),
            "https://foo.bar?user=****&password=****"
        );
        assert_eq!(
            redact_url("https://foo.bar?param1=abcd&param2=efgh"),
            "https://foo.bar?param1=abcd&param2=efgh"
        );
        assert_eq!(
            redact_url("https://foo.bar?param1=abcd&password=efgh"),
            "https://foo.bar?param1=abcd&password=****"
        );
    }

    #[test]
    fn camera_text_is_escaped_and_bounded() {
        use super::camera_text;
        assert_eq!(
            camera_text(b"OK\r\nInjected: yes\x1b[31m\\", 100),
            "OK\\r\\nInjected: yes\\x1b[31m\\\\"
        );
        assert_eq!(camera_text("é".as_bytes(), 100), "\\xc3\\xa9");
        assert_eq!(camera_text(&[b'a'; 10], 4), "aaaa…(6 more bytes)");
    }

    #[test]
    fn rtsp_urls_and_messages() {
        assert_eq!(
            redact_url("rtsp://admin:p@ss@10.0.0.5:554/stream1?auth=xyz"),
            "rtsp://****:****@10.0.0.5:554/stream1?auth=****"
        );
        assert_eq!(redact_url("rtsp://cam/x"), "rtsp://cam/x");
        assert_eq!(
            redact_url("cannot reach rtsp://u:v@h/a: refused"),
            "cannot reach rtsp://****:****@h/a: refused"
        );
    }
}
