//! Several real nodes wired together by an in-memory network that carries out their actions at
//! once: greetings are answered with the receiver's table, updates are delivered, announcements
//! reach every reachable node, and anything to or from an isolated node fails. The scenarios
//! and the property check that the cluster converges to the merge of every node's local files
//! after joins, partitions and restarts.

mod common;

use std::collections::{BTreeMap, VecDeque};

use common::*;
use dftp_core::{Action, Change, Config, DfsPath, Event, Meta, Node, Notice, PeerAddr, Request, Span, Time};
use proptest::collection::vec;
use proptest::prelude::*;

struct Net {
    nodes: Vec<Node>,
    cfgs: Vec<Config>,
    /// Each node's files on disk.
    disks: Vec<BTreeMap<DfsPath, Meta>>,
    isolated: Vec<bool>,
    now: Time,
    restarts: u64,
    notices: Vec<(usize, Notice)>,
}

impl Net {
    fn new(n: usize) -> Net {
        let cfgs: Vec<Config> = (0..n)
            .map(|i| Config::new(NODES[i], "dftp", addr(i as u8 + 1, 7040), addr(i as u8 + 1, 7041), 1))
            .collect();
        let nodes = cfgs.iter().map(|c| Node::new(c.clone(), t0())).collect();
        Net {
            nodes,
            cfgs,
            disks: vec![BTreeMap::new(); n],
            isolated: vec![false; n],
            now: t0(),
            restarts: 0,
            notices: Vec::new(),
        }
    }

    fn by_addr(&self, a: &PeerAddr) -> Option<usize> {
        self.cfgs.iter().position(|c| &c.mgmt_addr == a)
    }

    fn by_name(&self, n: &str) -> Option<usize> {
        self.cfgs.iter().position(|c| c.name == n)
    }

    fn reachable(&self, from: usize, to: Option<usize>) -> Option<usize> {
        to.filter(|&j| j != from && !self.isolated[from] && !self.isolated[j])
    }

    /// Feeds `event` to node `i` and carries out everything that follows, to quiescence.
    fn run(&mut self, i: usize, event: Event) {
        let mut queue: VecDeque<(usize, Event)> = VecDeque::from([(i, event)]);
        while let Some((i, event)) = queue.pop_front() {
            self.step(i, event, &mut queue);
        }
    }

    /// Handles one event at node `i`; what it sends is queued. A greeting is handled by its
    /// receiver at once, so that the answer (the receiver's table) reflects it, as over HTTP.
    fn step(&mut self, i: usize, event: Event, queue: &mut VecDeque<(usize, Event)>) {
        let actions = self.nodes[i].handle(self.now, event);
        for a in &actions {
            match a {
                Action::Greet { to, greeting } => match self.reachable(i, self.by_addr(to)) {
                    Some(j) => {
                        let from_host = Some(self.cfgs[i].mgmt_addr.host().into());
                        self.step(j, Event::GreetingReceived { greeting: greeting.clone(), from_host }, queue);
                        let reply = self.nodes[j].cluster_info(self.now);
                        queue.push_back((i, Event::GreetingAnswered { to: to.clone(), reply }));
                    }
                    None => queue.push_back((i, failed(Request::Greet(to.clone())))),
                },
                Action::SendUpdate { to, update, .. } => match self.reachable(i, self.by_name(to)) {
                    Some(j) => {
                        queue.push_back((j, Event::UpdateReceived((**update).clone())));
                        queue.push_back((i, Event::UpdateDelivered { to: to.clone(), full: false }));
                    }
                    None => queue.push_back((i, failed(Request::Update { to: to.clone(), full: false }))),
                },
                Action::SendFullUpdate { to, .. } => match self.reachable(i, self.by_name(to)) {
                    Some(j) => {
                        let u = full_update_of(a, 256).expect("a full update");
                        queue.push_back((j, Event::UpdateReceived(u)));
                        queue.push_back((i, Event::UpdateDelivered { to: to.clone(), full: true }));
                    }
                    None => queue.push_back((i, failed(Request::Update { to: to.clone(), full: true }))),
                },
                Action::Announce(ann) => {
                    for j in 0..self.nodes.len() {
                        if self.reachable(i, Some(j)).is_some() {
                            let event = Event::AnnouncementReceived { announcement: ann.clone(), from_host: None };
                            queue.push_back((j, event));
                        }
                    }
                }
                Action::Notice(n) => self.notices.push((i, n.clone())),
                Action::Refuse(_) | Action::WakeAt(_) => {}
            }
        }
    }

    /// Moves time forward second by second, with a timer tick on every node each second.
    fn advance(&mut self, secs: u64) {
        for _ in 0..secs {
            self.now = self.now + Span::from_secs(1);
            for i in 0..self.nodes.len() {
                self.run(i, Event::Timer);
            }
        }
    }

    fn change(&mut self, i: usize, changes: Vec<(DfsPath, Option<Meta>)>) {
        let mut out = Vec::new();
        for (path, meta) in changes {
            match meta {
                Some(m) => {
                    self.disks[i].insert(path.clone(), m);
                    out.push(Change::Upsert(path, m));
                }
                None => {
                    self.disks[i].remove(&path);
                    out.push(Change::Remove(path));
                }
            }
        }
        self.run(i, Event::LocalChanges(out));
    }

    /// The node starts again (a new epoch), scans its disk, and joins the first other node.
    fn restart(&mut self, i: usize) {
        self.restarts += 1;
        let mut cfg = self.cfgs[i].clone();
        cfg.epoch = 1 + self.restarts;
        self.nodes[i] = Node::new(cfg, self.now);
        let files: Vec<(DfsPath, Meta)> = self.disks[i].iter().map(|(p, m)| (p.clone(), *m)).collect();
        self.run(i, Event::LocalScan(files));
        let others: Vec<PeerAddr> =
            (0..self.nodes.len()).filter(|&j| j != i).map(|j| self.cfgs[j].mgmt_addr.clone()).take(1).collect();
        self.run(i, Event::JoinRequested(others));
    }

    fn model(&self) -> Model {
        self.cfgs.iter().zip(&self.disks).map(|(c, d)| (c.name.to_string(), d.clone())).collect()
    }

    /// Which nodes do not (yet) show the merge of every node's files.
    fn diverged(&self) -> Vec<usize> {
        let want = model_canon(&self.model());
        (0..self.nodes.len()).filter(|&i| snapshot_canon(&self.nodes[i].snapshot(self.now)) != want).collect()
    }
}

fn failed(request: Request) -> Event {
    Event::RequestFailed { request, reason: "unreachable".into() }
}

fn started(n: usize) -> Net {
    let mut net = Net::new(n);
    // Every node announces at start; the others greet it.
    for i in 0..n {
        net.run(i, Event::Timer);
    }
    net
}

#[test]
fn nodes_find_each_other_and_converge() {
    let mut net = started(3);
    for i in 0..3 {
        assert_eq!(net.nodes[i].peers().len(), 2, "node {i} met the others: {:?}", net.nodes[i].peers().keys());
    }
    net.change(0, vec![(p("a/x"), Some(file_meta(1))), (p("shared"), Some(file_meta(5)))]);
    net.change(1, vec![(p("a/y"), Some(file_meta(1))), (p("shared"), Some(file_meta(5)))]);
    net.change(2, vec![(p("b"), Some(dir_meta(1)))]);
    assert_eq!(net.diverged(), Vec::<usize>::new());
    let snap = net.nodes[2].snapshot(net.now);
    assert_eq!(snap.lookup(&p("shared")).map(|e| e.owner.as_str().to_string()).as_deref(), Some("n1"));
    assert_eq!(snap.lookup(&p("a")).map(|e| e.owner.as_str().to_string()).as_deref(), Some("(multiple)"));
}

#[test]
fn a_partition_drops_the_far_side_and_heals_within_a_ping() {
    let mut net = started(3);
    net.change(0, vec![(p("zero"), Some(file_meta(1)))]);
    net.change(1, vec![(p("one"), Some(file_meta(1)))]);
    net.isolated[1] = true;
    net.advance(45);
    let far = net.nodes[0].snapshot(net.now);
    assert_eq!(far.lookup(&p("one")), None, "n1's files are gone from n0 after the timeout");
    let mut lost: Vec<(usize, String)> = net
        .notices
        .iter()
        .filter_map(|(i, n)| match n {
            Notice::PeerLost { name, .. } => Some((*i, name.to_string())),
            _ => None,
        })
        .collect();
    lost.sort();
    assert_eq!(lost, vec![(0, "n1".to_string()), (1, "n0".to_string()), (1, "n2".to_string()), (2, "n1".to_string())]);
    // Changes on both sides while apart.
    net.change(1, vec![(p("one"), None), (p("one-b"), Some(file_meta(2)))]);
    net.change(0, vec![(p("zero-b"), Some(file_meta(2)))]);
    net.isolated[1] = false;
    let ping = net.nodes[0].config().ping_interval.as_millis() / 1000;
    net.advance(ping + 1);
    assert_eq!(net.diverged(), Vec::<usize>::new());
}

#[test]
fn a_node_restarted_within_the_timeout_replaces_its_old_view() {
    let mut net = started(2);
    net.change(1, vec![(p("kept"), Some(file_meta(1))), (p("deleted-while-down"), Some(file_meta(1)))]);
    assert_eq!(net.diverged(), Vec::<usize>::new());
    // n1 goes down, loses a file, and is back before n0 would drop it.
    net.isolated[1] = true;
    net.advance(5);
    net.disks[1].remove(&p("deleted-while-down"));
    net.isolated[1] = false;
    net.restart(1);
    let ping = net.nodes[0].config().ping_interval.as_millis() / 1000;
    net.advance(ping + 1);
    assert_eq!(net.diverged(), Vec::<usize>::new(), "n0 still shows what n1 deleted while down");
}

#[derive(Clone, Debug)]
enum Step {
    Change(usize, Vec<(DfsPath, Option<Meta>)>),
    Isolate(usize),
    Rejoin(usize),
    Restart(usize),
    Wait(u64),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let node = 0..3usize;
    prop_oneof![
        6 => (node.clone(), vec((path_strategy(), prop::option::weighted(0.7, meta_strategy())), 1..4))
            .prop_map(|(i, c)| Step::Change(i, c)),
        1 => node.clone().prop_map(Step::Isolate),
        1 => node.clone().prop_map(Step::Rejoin),
        1 => node.prop_map(Step::Restart),
        2 => prop_oneof![1u64..5, 25u64..45].prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever happened (changes anywhere, partitions, restarts), once the network is whole
    /// again every node shows the merge of every node's files within a ping interval.
    #[test]
    fn the_cluster_converges_after_anything(steps in vec(step_strategy(), 0..24)) {
        let mut net = started(3);
        for step in steps {
            match step {
                Step::Change(i, c) => net.change(i, c),
                Step::Isolate(i) => net.isolated[i] = true,
                Step::Rejoin(i) => net.isolated[i] = false,
                Step::Restart(i) => net.restart(i),
                Step::Wait(s) => net.advance(s),
            }
        }
        net.isolated = vec![false; 3];
        let ping = net.nodes[0].config().ping_interval.as_millis() / 1000;
        net.advance(ping + 1);
        prop_assert_eq!(net.diverged(), Vec::<usize>::new());
    }
}
