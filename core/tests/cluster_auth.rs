//! The cluster secret's tags (`cluster_auth`): a signed request verifies, and any change to what
//! was signed, a replay, a time outside the window or another key does not; answers are bound
//! to their request; multicast packets likewise; two keys rotate (a message carries a tag per
//! key of its signer).

use dftp_core::cluster_auth::{BodyDigest, KeyError, Keys, Nonce, NonceWindow, Refusal, Stamp, MIN_KEY_LEN, WINDOW};
use dftp_core::Time;
use proptest::prelude::*;

const OLD: &[u8] = b"0123456789abcdef0123456789abcdef-old";
const NEW: &[u8] = b"fedcba9876543210fedcba9876543210-new";

fn keys(k: &[u8]) -> Keys {
    Keys::new(k, None).unwrap()
}

fn now() -> Time {
    Time::from_secs(1_800_000_000)
}

/// What a request is made of.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    body: Vec<u8>,
    nonce: [u8; 16],
    /// Seconds from `now()` at which it was made.
    skew: i64,
}

fn req() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec!["POST", "GET", "PUT"]),
        "/[a-z/?=&.:0-9]{0,30}",
        prop::collection::vec(any::<u8>(), 0..200),
        any::<[u8; 16]>(),
        -300i64..=300,
    )
        .prop_map(|(m, path, body, nonce, skew)| Req { method: m.into(), path, body, nonce, skew })
}

fn made_at(skew: i64) -> Time {
    Time((now().0 as i64 + skew * 1000) as u64)
}

fn sign(k: &Keys, r: &Req) -> String {
    k.sign_request(&r.method, &r.path, made_at(r.skew), Nonce(r.nonce), BodyDigest::of(&r.body))
}

fn verify(k: &Keys, header: &str, r: &Req, seen: &mut NonceWindow) -> Result<(), Refusal> {
    let stamp = Stamp::parse(Some(header.as_bytes()))?;
    k.verify_request(&stamp, &r.method, &r.path, BodyDigest::of(&r.body), now(), seen)
}

/// `s` with the character at `i` (mod its length) replaced by another hex digit or digit.
fn flip_char(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = i % b.len();
    b[i] = match b[i] {
        b'0' => b'1',
        b'.' => b'-',
        b'v' => b'w',
        _ => b'0',
    };
    String::from_utf8(b).unwrap()
}

proptest! {
    #[test]
    fn a_signed_request_verifies_once(r in req()) {
        let k = keys(OLD);
        let header = sign(&k, &r);
        let mut seen = NonceWindow::default();
        prop_assert_eq!(verify(&k, &header, &r, &mut seen), Ok(()));
        prop_assert_eq!(verify(&k, &header, &r, &mut seen), Err(Refusal::Replayed));
    }

    #[test]
    fn any_change_to_what_was_signed_fails(r in req(), which in 0..5usize, salt in any::<u8>()) {
        let k = keys(OLD);
        let header = sign(&k, &r);
        let mut changed = r.clone();
        match which {
            0 => changed.method.push('X'),
            1 => changed.path.push(char::from(b'a' + salt % 26)),
            2 => changed.body.push(salt),
            3 => changed.nonce[usize::from(salt) % 16] ^= 1 | salt,
            _ => {
                // The time: another second within the window, stamped onto the same tag.
                let mut parts: Vec<String> = header.split('.').map(str::to_owned).collect();
                let secs: u64 = parts[1].parse().unwrap();
                parts[1] = (if secs > now().0 / 1000 - 100 { secs - 1 } else { secs + 1 }).to_string();
                let forged = parts.join(".");
                let mut seen = NonceWindow::default();
                prop_assert_eq!(verify(&k, &forged, &r, &mut seen), Err(Refusal::BadTag));
                prop_assert!(seen.is_empty(), "a refused request leaves no nonce behind");
                return Ok(());
            }
        }
        let mut seen = NonceWindow::default();
        let header = if which == 3 {
            // The nonce travels in the header: put the changed one there.
            let mut parts: Vec<String> = header.split('.').map(str::to_owned).collect();
            parts[2] = changed.nonce.iter().map(|b| format!("{b:02x}")).collect();
            parts.join(".")
        } else {
            header
        };
        prop_assert_eq!(verify(&k, &header, &changed, &mut seen), Err(Refusal::BadTag));
        prop_assert!(seen.is_empty());
    }

    #[test]
    fn any_change_to_the_tag_fails(r in req(), i in any::<usize>()) {
        let k = keys(OLD);
        let header = sign(&k, &r);
        // Only the tag's characters (the last field): the rest is covered above.
        let tag_start = header.rfind('.').unwrap() + 1;
        let forged = flip_char(&header, tag_start + i % (header.len() - tag_start));
        let mut seen = NonceWindow::default();
        prop_assert!(verify(&k, &forged, &r, &mut seen).is_err());
        prop_assert!(seen.is_empty());
    }

    #[test]
    fn a_request_outside_the_window_fails(r in req(), beyond in 1i64..1_000_000, before in any::<bool>()) {
        let k = keys(OLD);
        let window = (WINDOW.as_millis() / 1000) as i64;
        let r = Req { skew: if before { -window - beyond } else { window + beyond }, ..r };
        let header = sign(&k, &r);
        let mut seen = NonceWindow::default();
        let stale = matches!(verify(&k, &header, &r, &mut seen), Err(Refusal::Stale { .. }));
        prop_assert!(stale);
    }

    #[test]
    fn another_key_fails_and_two_keys_rotate(r in req()) {
        let (old, new) = (keys(OLD), keys(NEW));
        let both = Keys::new(NEW, Some(OLD)).unwrap();
        let by_old = sign(&old, &r);
        let by_both = sign(&both, &r);
        // Each check gets a fresh window: this is about keys, not replays.
        let v = |k: &Keys, h: &str| verify(k, h, &r, &mut NonceWindow::default());
        prop_assert_eq!(v(&new, &by_old), Err(Refusal::BadTag));
        prop_assert_eq!(v(&old, &by_old), Ok(()));
        prop_assert_eq!(v(&both, &by_old), Ok(()), "[new, old] accepts the old key");
        prop_assert_eq!(v(&new, &by_both), Ok(()), "[new, old] signs with the new one...");
        prop_assert_eq!(v(&old, &by_both), Ok(()), "...and the old one, for nodes that have only that");
        let stranger = Keys::new(b"another key, neither new nor old, long enough", None).unwrap();
        prop_assert_eq!(v(&stranger, &by_both), Err(Refusal::BadTag));
        prop_assert_eq!(v(&both, &sign(&stranger, &r)), Err(Refusal::BadTag));
        // Answers alike.
        let (n, d) = (Nonce(r.nonce), BodyDigest::of(&r.body));
        let answer = both.sign_response(n, 200, d);
        prop_assert_eq!(old.verify_response(Some(answer.as_bytes()), n, 200, d), Ok(()));
        prop_assert_eq!(new.verify_response(Some(answer.as_bytes()), n, 200, d), Ok(()));
        prop_assert_eq!(stranger.verify_response(Some(answer.as_bytes()), n, 200, d), Err(Refusal::BadTag));
    }

    #[test]
    fn an_answer_is_bound_to_its_request_status_and_body(
        nonce in any::<[u8; 16]>(), other in any::<[u8; 16]>(), status in 100u16..600,
        body in prop::collection::vec(any::<u8>(), 0..100), salt in any::<u8>(),
    ) {
        let k = keys(OLD);
        let tag = k.sign_response(Nonce(nonce), status, BodyDigest::of(&body));
        let v = |n: [u8; 16], s: u16, b: &[u8]| k.verify_response(Some(tag.as_bytes()), Nonce(n), s, BodyDigest::of(b));
        prop_assert_eq!(v(nonce, status, &body), Ok(()));
        if other != nonce {
            prop_assert_eq!(v(other, status, &body), Err(Refusal::BadTag), "an answer to another request");
        }
        prop_assert_eq!(v(nonce, status ^ 1, &body), Err(Refusal::BadTag));
        let mut b2 = body.clone();
        b2.push(salt);
        prop_assert_eq!(v(nonce, status, &b2), Err(Refusal::BadTag));
        prop_assert_eq!(keys(NEW).verify_response(Some(tag.as_bytes()), Nonce(nonce), status, BodyDigest::of(&body)), Err(Refusal::BadTag));
        prop_assert_eq!(k.verify_response(None, Nonce(nonce), status, BodyDigest::of(&body)), Err(Refusal::Missing));
    }

    #[test]
    fn a_packet_opens_once_with_the_key_and_not_when_changed(
        json in "\\{[a-zA-Z0-9\":,]{0,60}\\}", nonce in any::<[u8; 16]>(), i in any::<usize>(),
    ) {
        let k = keys(OLD);
        let packet = k.seal_packet(json.as_bytes(), now(), Nonce(nonce));
        let mut seen = NonceWindow::default();
        prop_assert_eq!(k.open_packet(&packet, now(), &mut seen), Ok(json.as_bytes()));
        prop_assert_eq!(k.open_packet(&packet, now(), &mut seen), Err(Refusal::Replayed));
        prop_assert!(keys(NEW).open_packet(&packet, now(), &mut NonceWindow::default()).is_err());
        let mut changed = packet.clone();
        let at = i % changed.len();
        changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
        prop_assert!(k.open_packet(&changed, now(), &mut NonceWindow::default()).is_err());
        prop_assert_eq!(k.open_packet(json.as_bytes(), now(), &mut NonceWindow::default()).is_err(), true, "unsealed");
    }
}

#[test]
fn malformed_and_missing_stamps_are_refused_by_name() {
    assert_eq!(Stamp::parse(None), Err(Refusal::Missing));
    for bad in [
        "",
        "v1",
        "v2.1800000000.00000000000000000000000000000000.0000000000000000000000000000000000000000000000000000000000000000",
        "v1.x.00000000000000000000000000000000.0000000000000000000000000000000000000000000000000000000000000000",
        "v1.-1.00000000000000000000000000000000.0000000000000000000000000000000000000000000000000000000000000000",
        "v1.1800000000.0000.0000000000000000000000000000000000000000000000000000000000000000",
        "v1.1800000000.00000000000000000000000000000000.00",
        "v1.1800000000.0000000000000000000000000000000G.0000000000000000000000000000000000000000000000000000000000000000",
        "v1.1800000000.00000000000000000000000000000000.0000000000000000000000000000000000000000000000000000000000000000.x",
        "v1.99999999999999999999.00000000000000000000000000000000.0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        assert!(matches!(Stamp::parse(Some(bad.as_bytes())), Err(Refusal::Malformed(_))), "{bad:?}");
    }
}

#[test]
fn the_nonce_memory_forgets_what_the_window_refuses_anyway_and_is_bounded() {
    let k = keys(OLD);
    let window = WINDOW.as_millis() / 1000;
    let r = |n: u32| Req { method: "POST".into(), path: "/update/".into(), body: vec![], nonce: nonce(n), skew: 0 };
    fn nonce(n: u32) -> [u8; 16] {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&n.to_be_bytes());
        b
    }
    let mut seen = NonceWindow::with_capacity(3);
    for n in 0..3 {
        assert_eq!(verify(&k, &sign(&k, &r(n)), &r(n), &mut seen), Ok(()));
    }
    // Full: a fourth is refused, and no earlier one is forgotten (it could be replayed then).
    assert_eq!(verify(&k, &sign(&k, &r(3)), &r(3), &mut seen), Err(Refusal::Busy));
    assert_eq!(verify(&k, &sign(&k, &r(0)), &r(0), &mut seen), Err(Refusal::Replayed));
    assert_eq!(seen.len(), 3);
    // Once the window has passed over them, they go, and new requests get in.
    let later = Time(now().0 + (window + 1) * 1000);
    let stamp = |n: u32| {
        let header = k.sign_request("POST", "/update/", later, Nonce(nonce(n)), BodyDigest::of(b""));
        Stamp::parse(Some(header.as_bytes())).unwrap()
    };
    assert_eq!(k.verify_request(&stamp(3), "POST", "/update/", BodyDigest::of(b""), later, &mut seen), Ok(()));
    assert_eq!(seen.len(), 1);
}

#[test]
fn key_files_hold_one_or_two_long_keys() {
    let long = "k".repeat(MIN_KEY_LEN);
    assert!(Keys::from_file(format!("# the cluster key\n\n  {long}  \n").as_bytes()).is_ok());
    assert!(Keys::from_file(format!("{long}\n{long}x\n").as_bytes()).is_ok());
    assert_eq!(Keys::from_file(b"# nothing\n\n").unwrap_err(), KeyError::None);
    assert_eq!(Keys::from_file(format!("{long}\n{long}\n{long}\n").as_bytes()).unwrap_err(), KeyError::TooMany);
    assert_eq!(Keys::from_file(format!("{long}\nshort\n").as_bytes()).unwrap_err(), KeyError::TooShort(2));
    assert_eq!(Keys::from_file(b"\xff\xfe").unwrap_err(), KeyError::NotText);
    // Whitespace around a key is not part of it: a file written with or without a newline at
    // its end signs alike.
    let (a, b) =
        (Keys::from_file(long.as_bytes()).unwrap(), Keys::from_file(format!("{long}\r\n").as_bytes()).unwrap());
    let r = Req { method: "POST".into(), path: "/cluster/".into(), body: b"x".to_vec(), nonce: [7; 16], skew: 0 };
    assert_eq!(verify(&b, &sign(&a, &r), &r, &mut NonceWindow::default()), Ok(()));
    assert!(!format!("{a:?}").contains(&long), "keys never print");
}
