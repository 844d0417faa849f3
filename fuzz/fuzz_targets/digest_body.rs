//! `POST /digest/` and its answer (anti-entropy by digest): whatever parses is written back and
//! read again unchanged; a digest is fed to a node that knows its sender, whose answer must
//! parse too; an answer is fed to a node as the reply to a digest it sent; a repair (an update
//! with `Buckets`) built from the same bytes is fed to it as well.

#![no_main]

use dftp_core::anti_entropy::{DigestAnswer, DigestMsg};
use dftp_core::{Action, Config, Event, Greeting, Node, PeerAddr, StreamPos, Time, Update};
use libfuzzer_sys::fuzz_target;

fn now() -> Time {
    Time::from_secs(1_800_000_000)
}

/// A node that knows a peer `b`.
fn node() -> Node {
    let addr = |port| PeerAddr::new_unchecked("127.0.0.1", port);
    let mut n = Node::new(Config::new("self", "dftp", addr(7040), addr(7041), 1), now());
    let greeting =
        Greeting { name: "b".into(), public_addr: addr(8040), mgmt_addr: addr(8041), request_full_update: false };
    n.handle(now(), Event::GreetingReceived { greeting, from_host: None });
    n
}

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = DigestMsg::from_json(data) {
        assert_eq!(DigestMsg::from_json(&msg.to_json()).expect("our own digest parses"), msg);
        let mut n = node();
        let actions = n.handle(now(), Event::DigestReceived(msg));
        for a in &actions {
            if let Action::DigestReply(answer) = a {
                DigestAnswer::from_json(&answer.to_json()).expect("our own answer parses");
            }
        }
        let (kept, recomputed) = n.view_digests("b").expect("b is known");
        assert_eq!(kept, recomputed, "a digest changes nothing");
    }
    if let Ok(answer) = DigestAnswer::from_json(data) {
        assert_eq!(DigestAnswer::from_json(&answer.to_json()).expect("our own answer parses"), answer);
        let mut n = node();
        let sent = StreamPos { epoch: 1, seq: 0 };
        n.handle(now(), Event::DigestAnswered { to: "b".into(), sent, answer });
    }
    if let Ok(update) = Update::from_json(data) {
        if update.buckets.is_some() {
            let mut n = node();
            n.handle(now(), Event::UpdateReceived(update));
            let (kept, recomputed) = n.view_digests("b").expect("b is known");
            assert_eq!(kept, recomputed, "the digest follows a repair");
        }
    }
});
