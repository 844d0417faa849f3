//! FTP: every node serves the merged tree over FTP (libunftp and our backend), read-only, to a
//! real client (suppaftp) over loopback: listings, metadata that agrees with HTTP, downloads of
//! local and proxied files with REST, PASV and EPSV, paths outside the tree, many clients at
//! once, no descriptor leak, and an owner that vanishes in the middle of a transfer.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use dftp_e2e::ftp::{ftp_addr, with_ftp};
use dftp_e2e::{encode_path, http, wait_until, Fixture, Node, Value, BIG_LEN, WAIT};
use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpStream, Mode};

/// The 32 MiB file of the fixture, held by alpha.
const BIG: &str = "big/32 MiB.bin";
/// Socket timeouts of the client: a hang fails the test instead of blocking it forever.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// A logged-in binary-mode session with `node` in `mode`.
fn connect_mode(node: &Node, mode: Mode) -> FtpStream {
    let addr = ftp_addr(node);
    let control = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect to FTP");
    control.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    control.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut ftp = FtpStream::connect_with_stream(control).expect("FTP greeting").passive_stream_builder(|addr| {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(FtpError::ConnectionError)?;
        s.set_read_timeout(Some(IO_TIMEOUT)).map_err(FtpError::ConnectionError)?;
        Ok(s)
    });
    ftp.login("anonymous", "e2e@example.org").expect("anonymous login");
    ftp.transfer_type(FileType::Binary).expect("TYPE I");
    ftp.set_mode(mode);
    ftp
}

fn connect(node: &Node) -> FtpStream {
    connect_mode(node, Mode::ExtendedPassive)
}

/// The reply code of a refused command.
fn code<T: std::fmt::Debug>(r: Result<T, FtpError>) -> u32 {
    match r {
        Err(FtpError::UnexpectedResponse(resp)) => resp.status.code(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn retr(ftp: &mut FtpStream, path: &str) -> Vec<u8> {
    ftp.retr_as_buffer(path).unwrap_or_else(|e| panic!("RETR {path}: {e}")).into_inner()
}

/// The name column of an `ls -l` line: everything after the eighth field.
fn ls_name(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..8 {
        rest = rest.trim_start();
        rest = &rest[rest.find(' ').unwrap_or(rest.len())..];
    }
    rest.strip_prefix(' ').unwrap_or(rest)
}

fn entries(listing: &Value) -> Vec<Value> {
    listing["entries"].as_array().cloned().unwrap_or_default()
}

#[test]
fn listings_metadata_paths_and_modes() {
    let f = Fixture::start_with(false, with_ftp);
    for node in &f.nodes {
        let mut ftp = connect(node);
        assert!(ftp.get_welcome_msg().is_some_and(|w| w.starts_with("220")), "greeting {:?}", ftp.get_welcome_msg());
        assert_eq!(ftp.pwd().unwrap(), "/");
        let feat = ftp.feat().expect("FEAT");
        for ext in ["EPSV", "MDTM", "MLST", "SIZE", "REST"] {
            assert!(feat.contains_key(ext), "FEAT lacks {ext}: {feat:?}");
        }

        // The root listing is the union, in the HTML listing's order, with its owners.
        let want = entries(&node.listing(""));
        let lines = ftp.list(None).expect("LIST /");
        let names: Vec<&str> = lines.iter().map(|l| ls_name(l)).collect();
        let want_names: Vec<&str> = want.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names, want_names, "LIST / on {}:\n{}", node.name, lines.join("\n"));
        for name in ["sub dir", "beta only", "sub dir2", "emptydir", "space name.txt", "gamma.txt", "日本語.txt"] {
            assert!(names.contains(&name), "{name} missing from LIST / on {}: {names:?}", node.name);
        }
        for (line, e) in lines.iter().zip(&want) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dir = e["type"] == "dir";
            assert_eq!(line.starts_with('d'), dir, "{line}");
            assert_eq!(fields[2], e["owner"].as_str().unwrap(), "owner column: {line}");
            if !dir {
                assert_eq!(fields[4], e["size"].to_string(), "size column: {line}");
            }
        }
        assert!(!names.iter().any(|n| n.contains("link")), "symlinks are not listed: {names:?}");
        assert_eq!(ftp.nlst(None).expect("NLST"), want_names, "NLST / on {}", node.name);
        let mlsd = ftp.mlsd(None).expect("MLSD");
        assert_eq!(mlsd.len(), want.len());
        for (line, e) in mlsd.iter().zip(&want) {
            let kind = if e["type"] == "dir" { "type=dir;" } else { "type=file;" };
            assert!(line.starts_with(kind), "{line}");
            assert!(line.ends_with(&format!(" {}", e["name"].as_str().unwrap())), "{line}");
        }

        // A subdirectory, by CWD and by argument; CDUP back.
        let sub = entries(&node.listing("sub dir"));
        let sub_names: Vec<&str> = sub.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(sub_names, ["alpha.txt", "beta.txt"]);
        let by_arg: Vec<String> = ftp.list(Some("sub dir")).unwrap().iter().map(|l| ls_name(l).to_string()).collect();
        assert_eq!(by_arg, sub_names);
        ftp.cwd("sub dir").expect("CWD sub dir");
        assert_eq!(ftp.pwd().unwrap(), "/sub dir");
        assert_eq!(ftp.nlst(None).unwrap(), sub_names);
        assert_eq!(retr(&mut ftp, "beta.txt"), f.content("sub dir/beta.txt"));
        ftp.cwd("/sub dir2/nested").expect("CWD to an absolute path");
        assert_eq!(ftp.nlst(None).unwrap(), ["deep.txt"]);
        ftp.cdup().unwrap();
        ftp.cdup().unwrap();
        assert_eq!(ftp.pwd().unwrap(), "/");
        let mlst = ftp.mlst(Some("/gamma.txt")).expect("MLST");
        assert!(
            mlst.contains("type=file;") && mlst.contains(&format!("size={};", f.content("gamma.txt").len())),
            "{mlst}"
        );

        // SIZE and MDTM agree with HTTP's Content-Length and Last-Modified, for local and
        // remote files alike.
        for (rel, _) in &f.files {
            let head = http("HEAD", &node.url(&format!("/fs/{}", encode_path(rel))), &[], None);
            assert_eq!(head.status, 200, "HEAD {rel}");
            let size = ftp.size(format!("/{rel}")).unwrap_or_else(|e| panic!("SIZE {rel}: {e}"));
            assert_eq!(Some(size.to_string().as_str()), head.header("content-length"), "SIZE {rel} on {}", node.name);
            let mdtm = ftp.mdtm(format!("/{rel}")).unwrap_or_else(|e| panic!("MDTM {rel}: {e}"));
            let shown = mdtm.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            assert_eq!(Some(shown.as_str()), head.header("last-modified"), "MDTM {rel} on {}", node.name);
        }

        // Every file downloads intact from every node, in both passive modes.
        for mode in [Mode::Passive, Mode::ExtendedPassive] {
            ftp.set_mode(mode);
            assert_eq!(ftp.nlst(Some("/sub dir")).unwrap(), sub_names, "NLST in {mode:?}");
            for (rel, _) in &f.files {
                assert_eq!(
                    retr(&mut ftp, &format!("/{rel}")),
                    f.content(rel),
                    "RETR {rel} in {mode:?} on {}",
                    node.name
                );
            }
        }

        // Nothing outside the tree, and nothing unknown.
        for bad in [
            "/nope",
            "../../../../etc/passwd",
            "/../etc/passwd",
            "/sub dir/../../etc/passwd",
            "/etc/passwd",
            "passwd-link",
            "etc-link/passwd",
            "sub dir\\..\\..\\etc\\passwd",
        ] {
            assert_eq!(code(ftp.size(bad)), 550, "SIZE {bad}");
            assert_eq!(code(ftp.mdtm(bad)), 550, "MDTM {bad}");
            assert_eq!(code(ftp.cwd(bad)), 550, "CWD {bad}");
            assert_eq!(code(ftp.retr_as_buffer(bad)), 550, "RETR {bad}");
            assert_eq!(code(ftp.list(Some(bad))), 550, "LIST {bad}");
        }
        for bad in ["..", "../..", "/..", "sub dir/../.."] {
            assert_eq!(code(ftp.cwd(bad)), 550, "CWD {bad}");
            assert_eq!(ftp.pwd().unwrap(), "/", "a refused CWD {bad} leaves the directory alone");
        }
        assert_eq!(code(ftp.cwd("gamma.txt")), 550, "CWD to a file");

        // Read-only: every write is refused with 550.
        assert_eq!(code(ftp.mkdir("newdir")), 550, "MKD");
        assert_eq!(code(ftp.rmdir("emptydir")), 550, "RMD");
        assert_eq!(code(ftp.rm("gamma.txt")), 550, "DELE");
        assert_eq!(code(ftp.rename("gamma.txt", "renamed.txt")), 550, "RNFR/RNTO");
        assert_eq!(code(ftp.put_file("new.txt", &mut &b"data"[..])), 550, "STOR");
        assert_eq!(ftp.nlst(Some("/emptydir")).unwrap(), Vec::<String>::new());
        ftp.quit().unwrap();
    }
    let find = f.nodes[0].find();
    assert!(!find.contains("new.txt") && !find.contains("newdir") && find.contains("/gamma.txt"), "nothing changed");
    for n in &f.nodes {
        let log = n.log();
        assert!(!log.contains("root:x:0:0"), "{} logged /etc/passwd", n.name);
    }
}

/// Reads `path` through a fresh session in `chunks`, checking every byte against `want`
/// starting at `offset`; returns how many bytes came.
fn retr_compare(ftp: &mut FtpStream, path: &str, offset: usize, want: &[u8]) -> usize {
    ftp.resume_transfer(offset).unwrap();
    ftp.retr(path, |r| {
        let mut buf = vec![0u8; 1 << 20];
        let mut at = offset;
        loop {
            let n = r.read(&mut buf).map_err(FtpError::ConnectionError)?;
            if n == 0 {
                return Ok(at - offset);
            }
            assert!(at + n <= want.len(), "{path}: more bytes than the file has");
            assert!(buf[..n] == want[at..at + n], "{path}: bytes {at}..{} differ", at + n);
            at += n;
        }
    })
    .unwrap_or_else(|e| panic!("RETR {path} from {offset}: {e}"))
}

/// Open descriptors of the process serving HTTP on `node.http`.
fn open_fds(node: &Node) -> usize {
    let needle = format!("--http-listen\0{}\0", node.http);
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit())))
        .find(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle)))
        .unwrap_or_else(|| panic!("no process of node {}", node.name))
        .path();
    std::fs::read_dir(pid.join("fd")).unwrap().count()
}

#[test]
fn big_files_resume_many_clients_and_no_descriptor_leak() {
    let f = Fixture::start_with(true, with_ftp);
    let big = Arc::new(f.content(BIG));
    assert_eq!(big.len(), BIG_LEN);

    // Local on alpha, proxied from alpha on beta and gamma; whole, and resumed.
    for node in &f.nodes {
        let mut ftp = connect(node);
        assert_eq!(ftp.size(BIG).unwrap(), BIG_LEN, "SIZE on {}", node.name);
        assert_eq!(retr_compare(&mut ftp, BIG, 0, &big), BIG_LEN, "RETR on {}", node.name);
        for offset in [1, 12345, BIG_LEN / 2 + 7, BIG_LEN - 1, BIG_LEN] {
            assert_eq!(retr_compare(&mut ftp, BIG, offset, &big), BIG_LEN - offset, "REST {offset} on {}", node.name);
        }
        // An interrupted download, continued from where it stopped.
        ftp.set_mode(Mode::Passive);
        let mut first = vec![0u8; 3 << 20];
        {
            let mut s = ftp.retr_as_stream(BIG).unwrap();
            s.read_exact(&mut first).unwrap();
            // Dropping the stream mid-way closes the data connection; the server reports the
            // aborted transfer, which is not what this test is about.
            let _ = s.finish();
        }
        assert!(first[..] == big[..first.len()]);
        assert_eq!(retr_compare(&mut ftp, BIG, first.len(), &big), BIG_LEN - first.len(), "resumed on {}", node.name);
        ftp.noop().expect("the session is still usable");
        ftp.quit().unwrap();
    }

    // Twenty clients at once, spread over the nodes (two thirds of them proxied).
    let addrs: Vec<usize> = (0..20).map(|i| i % f.nodes.len()).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let (node, big) = (&f.nodes[n], big.clone());
                s.spawn(move || {
                    let mode = if i % 2 == 0 { Mode::ExtendedPassive } else { Mode::Passive };
                    let mut ftp = connect_mode(node, mode);
                    let got = retr_compare(&mut ftp, BIG, 0, &big);
                    let _ = ftp.quit();
                    got
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().expect("client thread"), BIG_LEN, "client {i}");
        }
    });

    // 200 transfers (local and proxied, listings between) leave no descriptors behind.
    let beta = f.node("beta");
    let small_local = "sub dir/beta.txt";
    let small_remote = "gamma.txt";
    let warm = |ftp: &mut FtpStream| {
        assert_eq!(retr(ftp, small_local), f.content(small_local));
        assert_eq!(retr(ftp, small_remote), f.content(small_remote));
    };
    let mut ftp = connect(beta);
    warm(&mut ftp);
    ftp.quit().unwrap();
    // Settled: the connections of the transfers above are closed (passive listeners that were
    // never used close after libunftp's 15 s accept timeout).
    let before = wait_until("beta's descriptors to settle", WAIT * 3, || {
        let a = open_fds(beta);
        std::thread::sleep(Duration::from_millis(500));
        (open_fds(beta) == a).then_some(a)
    });
    for session in 0..10 {
        let mut ftp = connect_mode(beta, if session % 2 == 0 { Mode::Passive } else { Mode::ExtendedPassive });
        for i in 0..20 {
            match i % 4 {
                0 | 1 => assert_eq!(retr(&mut ftp, small_local), f.content(small_local)),
                2 => assert_eq!(retr(&mut ftp, small_remote), f.content(small_remote)),
                _ => assert_eq!(retr(&mut ftp, &format!("/{BIG}")).len(), BIG_LEN),
            }
        }
        assert!(!ftp.list(None).unwrap().is_empty());
        ftp.quit().unwrap();
    }
    let after = wait_until("beta's descriptors to come back down", WAIT * 3, || {
        let n = open_fds(beta);
        (n <= before + 8).then_some(n)
    });
    eprintln!("beta's open descriptors: {before} before 200 transfers, {after} after");
}

#[test]
fn an_owner_vanishing_mid_transfer_ends_it_with_an_error() {
    let mut f = Fixture::start_with(false, with_ftp);
    // A file too big to sit in socket buffers, so that alpha is still sending when it dies.
    let huge = "huge/zeros.bin";
    let huge_len: u64 = 1 << 30;
    let path = f.roots[0].path().join(huge);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(&path).unwrap().set_len(huge_len).unwrap();
    let beta_url = f.node("beta").url(&format!("/fs/{}", encode_path(huge)));
    wait_until("beta to know the new file", WAIT, || (http("HEAD", &beta_url, &[], None).status == 200).then_some(()));

    let mut ftp = connect(f.node("beta"));
    assert_eq!(ftp.size(format!("/{huge}")).unwrap() as u64, huge_len);
    let mut stream = ftp.retr_as_stream(format!("/{huge}")).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    stream.read_exact(&mut buf).unwrap();

    let alpha = f.nodes.remove(0);
    assert_eq!(alpha.name, "alpha");
    drop(alpha); // killed

    let mut got = buf.len() as u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n as u64,
            Err(e) => panic!("the data connection should end, not fail ({e}) or hang"),
        }
    }
    assert!(got < huge_len, "the transfer cannot have completed ({got} bytes)");
    let code = match stream.finish() {
        Err(FtpError::UnexpectedResponse(r)) => r.status.code(),
        other => panic!("a cut transfer must end with an error reply, got {other:?}"),
    };
    assert!((400..600).contains(&code), "error reply {code}");

    // The session, and beta's FTP, carry on.
    assert!(ftp.nlst(None).unwrap().contains(&"sub dir".to_string()));
    assert_eq!(retr(&mut ftp, "/sub dir/beta.txt"), f.content("sub dir/beta.txt"));
    ftp.quit().unwrap();
    let mut again = connect(f.node("gamma"));
    again.noop().unwrap();
}
