use super::site::{
    locate, locate_function, normalize, parse_metadata, source_host, tag_for, Dist, Installed,
    StepStatus,
};
use super::*;

const SETS: [VersionSet; 2] = [VersionSet::Current, VersionSet::Seed];

#[test]
fn data_parses_and_every_map_reference_exists() {
    let map: StageMap = serde_json::from_str(MAP_JSON).expect("stage-map.json parses");
    for set in SETS {
        set_tables(set).expect("tables build");
    }
    // Every step number named in the map exists in at least one version set and mode.
    let all: Vec<&[ChainStage]> = SETS
        .iter()
        .flat_map(|&set| AsyncMode::ALL.map(|mode| chain(Stack { set, mode }).expect("chain")))
        .collect();
    let parts = map
        .trace
        .iter()
        .flat_map(|r| &r.parts)
        .chain(map.entries.iter().flat_map(|e| &e.parts));
    for part in parts {
        for n in part.steps.iter().flatten() {
            let id = format!("{}.{n}", part.chain);
            let known = all
                .iter()
                .any(|c| c.iter().flat_map(|s| &s.steps).any(|s| s.step_id == id));
            assert!(known, "stage-map.json names {id}, which no version set has");
        }
    }
    let names: Vec<&str> = map.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ENTRY_NAMES);
}

#[test]
fn step_ids_are_unique_in_each_set() {
    for set in SETS {
        for mode in AsyncMode::ALL {
            let mut seen = std::collections::HashSet::new();
            for stage in chain(Stack { set, mode }).unwrap() {
                for s in &stage.steps {
                    assert!(
                        seen.insert(s.step_id.clone()),
                        "{set:?} {mode}: {} twice",
                        s.step_id
                    );
                }
            }
        }
    }
}

#[test]
fn links_every_stage_and_kind_maps_to_steps() {
    for set in SETS {
        for stage in Stage::ALL {
            if matches!(
                stage,
                Stage::TcpData | Stage::Error | Stage::Diagnosis | Stage::App
            ) {
                continue;
            }
            assert!(
                !for_event(set, stage, None).is_empty(),
                "{set:?} {stage} has no steps"
            );
        }
        for stage in Stage::ALL {
            for &kind in stage.kinds() {
                let links = for_event(set, stage, Some(kind));
                assert!(!links.is_empty(), "{set:?} {stage}:{kind} has no steps");
                let t = set_tables(set).expect("tables");
                let explicit = t
                    .by_stage
                    .get(&stage)
                    .is_some_and(|s| s.kinds.contains_key(&kind));
                assert!(
                    explicit,
                    "{set:?} {stage}:{kind} has no rule of its own in stage-map.json"
                );
            }
        }
    }
}

#[test]
fn links_kinds_narrow_and_unknown_kinds_fall_back() {
    let ping = for_event(VersionSet::Current, Stage::EioPacket, Some(Kind::Ping));
    assert!(ping
        .iter()
        .all(|l| l.step.step_id.starts_with("ping_pong.")));
    let open = for_event(VersionSet::Current, Stage::EioPacket, Some(Kind::Open));
    assert!(open
        .iter()
        .all(|l| l.step.step_id.starts_with("eio_handshake.")));
    let connect = for_event(VersionSet::Seed, Stage::SioPacket, Some(Kind::Connect));
    assert!(connect
        .iter()
        .all(|l| l.step.step_id.starts_with("sio_connect.")));
    // A kind the stage does not tell apart gets the stage's default.
    let other = for_event(VersionSet::Current, Stage::EioPacket, Some(Kind::Fanout));
    assert_eq!(
        other,
        for_event(VersionSet::Current, Stage::EioPacket, None)
    );
    let up = for_event(VersionSet::Current, Stage::EioUpgrade, None);
    let ids: Vec<&str> = up.iter().map(|l| l.step.step_id.as_str()).collect();
    assert_eq!(ids, ["ws_upgrade.24", "ws_upgrade.25", "ws_upgrade.26"]);
    assert!(for_event(VersionSet::Current, Stage::TcpData, None).is_empty());
    // Version-specific steps: the seed's ping sender is a nested function.
    let seed_ping = for_event(VersionSet::Seed, Stage::EioPacket, Some(Kind::Ping));
    assert!(seed_ping
        .iter()
        .any(|l| l.step.symbol == "Socket.schedule_ping.send_ping"));
    // The same call returns the same precomputed slice.
    let a = for_event(VersionSet::Seed, Stage::SioDispatch, None);
    let b = for_event(VersionSet::Seed, Stage::SioDispatch, None);
    assert!(std::ptr::eq(a, b));
}

#[test]
fn links_permalink_format() {
    let url = permalink(
        &SourceHost::GitHub,
        "miguelgrinberg/python-engineio",
        "v4.13.3",
        "src/engineio/packet.py",
        56,
        82,
    );
    assert_eq!(url, "https://github.com/miguelgrinberg/python-engineio/blob/v4.13.3/src/engineio/packet.py#L56-L82");
    let one = permalink(
        &SourceHost::GitHub,
        "pallets/werkzeug",
        "3.1.8",
        "src/werkzeug/serving.py",
        253,
        253,
    );
    assert_eq!(
        one,
        "https://github.com/pallets/werkzeug/blob/3.1.8/src/werkzeug/serving.py#L253"
    );
    let gitea = permalink(
        &SourceHost::Gitea("code.miguelgrinberg.com".into()),
        "miguelgrinberg/python-socketio",
        "v5.18.1",
        "src/socketio/server.py",
        10,
        12,
    );
    assert_eq!(gitea, "https://code.miguelgrinberg.com/miguelgrinberg/python-socketio/src/tag/v5.18.1/src/socketio/server.py#L10-L12");
    assert_eq!(
        short_form("src/engineio/packet.py", 64),
        "engineio/packet.py:64"
    );
    assert_eq!(
        short_form("Lib/socketserver.py", 473),
        "Lib/socketserver.py:473"
    );
}

#[test]
fn links_data_urls_match_step_fields() {
    for set in SETS {
        for st in chain(set).expect("chain") {
            for s in &st.steps {
                let l = StepLink::new(s.clone(), &SourceHost::GitHub, None);
                assert!(l.url.starts_with(&format!(
                    "https://github.com/{}/blob/{}/{}#L{}",
                    s.repo, s.tag, s.path, s.line_start
                )));
                assert_eq!(l.url.contains("-L"), s.line_end > s.line_start, "{}", l.url);
                assert!(s.line_end >= s.line_start && !s.anchor.is_empty());
            }
        }
    }
    let seed = chain(VersionSet::Seed).expect("seed");
    let on = seed
        .iter()
        .flat_map(|s| &s.steps)
        .find(|s| s.symbol == "SocketIO.on")
        .expect("SocketIO.on");
    assert_eq!((on.version.as_str(), on.line_start), ("5.3.3", 258));
}

#[test]
fn links_json_shape() {
    let secs = sections(VersionSet::Current, Some("ws.handshake")).expect("ws.handshake");
    let v = render::json_value(&secs);
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 1);
    assert_eq!(arr[0]["stage"], "ws.handshake");
    assert!(arr[0]["title"].as_str().is_some_and(|t| !t.is_empty()));
    let steps = arr[0]["steps"].as_array().expect("steps");
    assert!(!steps.is_empty());
    for key in [
        "package",
        "version",
        "repo",
        "tag",
        "path",
        "line_start",
        "line_end",
        "symbol",
        "anchor",
        "what",
        "url",
    ] {
        assert!(steps[0].get(key).is_some(), "missing {key}");
    }
    assert!(steps[0]["line_start"].is_u64());
    assert!(steps[0]["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://github.com/")));
    let all = render::json_value(&sections(VersionSet::Seed, None).expect("all"));
    assert_eq!(all.as_array().map(Vec::len), Some(14));
}

#[test]
fn links_stage_names_resolve() {
    for name in [
        "ws_upgrade",
        "ws.handshake",
        "eio.packet:ping",
        "entry:on",
        "entry:route",
        "entry:emit",
        "entry:socketio",
    ] {
        let secs = sections(VersionSet::Seed, Some(name)).expect(name);
        assert_eq!(secs.len(), 1);
        assert!(!secs[0].links.is_empty(), "{name}");
    }
    let err = sections(VersionSet::Current, Some("ws.handshak")).expect_err("unknown");
    let msg = err.to_string();
    for want in ["ws_upgrade", "ws.handshake", "entry:on", "eio.packet:{open"] {
        assert!(msg.contains(want), "{msg}");
    }
    assert!(sections(VersionSet::Current, Some("eio.packet:bogus")).is_err());
}

#[test]
fn links_entry_points_have_both_phases() {
    for set in SETS {
        let on = entry_point(set, "entry:on")
            .expect("tables")
            .expect("entry:on");
        assert!(on.links.iter().any(|l| l.phase == Some("registration")));
        assert!(on.links.iter().any(|l| l.phase == Some("call")));
        let emit = entry_point(set, "entry:emit")
            .expect("tables")
            .expect("entry:emit");
        assert_eq!(emit.links[0].step.symbol, "emit");
        assert_eq!(entry_points(set).expect("entries").len(), ENTRY_NAMES.len());
    }
}

#[test]
fn links_markdown_and_text() {
    let secs = sections(VersionSet::Seed, Some("entry:on")).expect("entry:on");
    let md = render::markdown_for_test(&secs);
    assert!(md.starts_with("## @socketio.on(...) (`entry:on`)"));
    assert!(md.contains("](https://github.com/miguelgrinberg/Flask-SocketIO/blob/v5.3.3/src/flask_socketio/__init__.py#L258-L290)"));
    let text = render::text_for_test(&secs);
    assert!(!text.contains('\u{1b}'));
    assert!(text.contains("flask_socketio/__init__.py:258-290"));
}

fn step(symbol: &str, anchor: &str, line: u32) -> Step {
    Step {
        step_id: "x.0".into(),
        package: "python-socketio".into(),
        version: "5.16.3".into(),
        repo: "miguelgrinberg/python-socketio".into(),
        tag: "v5.16.3".into(),
        path: "src/socketio/server.py".into(),
        line_start: line,
        line_end: line + 1,
        symbol: symbol.into(),
        anchor: anchor.into(),
        what: String::new(),
        modes: None,
        stands_for: None,
        only_if: None,
    }
}

#[test]
fn links_locate_by_anchor_and_symbol() {
    let src = "import x\n\nclass Server:\n    def a(self):\n        if y:\n            return 1\n\n    def b(self):\n        if y:\n            return 1\n";
    // `if y:` appears twice: the symbol picks the right one, wherever the old line was.
    assert_eq!(locate(src, &step("Server.b", "if y:", 2)), Some(9));
    assert_eq!(locate(src, &step("Server.a", "if y:", 40)), Some(5));
    assert_eq!(locate(src, &step("Server.a", "def a(self):", 4)), Some(4));
    assert_eq!(locate(src, &step("Server", "class Server:", 1)), Some(3));
    assert_eq!(locate(src, &step("<module>", "import x", 7)), Some(1));
    assert_eq!(locate(src, &step("Server.c", "if y:", 9)), None);
    assert_eq!(locate(src, &step("Server.a", "return 2", 6)), None);
    let sig =
        "class A:\n    def run(\n        self,\n        x: int,\n    ) -> None:\n        x = 1\n";
    assert_eq!(locate(sig, &step("A.run", "x = 1", 6)), Some(6));
}

#[test]
fn links_find_a_function_whose_line_changed() {
    let src = "class BaseManager:\n    x = 1\n\n    def pre_connect(self, eio_sid, namespace):\n        return 1\n\n    def connect(self, sid, namespace):\n        \"\"\"Doc.\"\"\"\n        if y:\n            return 2\n\n        return 3\n\ndef connect(a):\n    pass\n";
    // The method, not the module-level function of the same name; to its last line.
    assert_eq!(locate_function(src, "BaseManager.connect"), Some((7, 12)));
    assert_eq!(locate_function(src, "connect"), Some((14, 15)));
    assert_eq!(locate_function(src, "BaseManager.gone"), None);
    let sig = "class A:\n    def run(\n        self,\n    ) -> None:\n        x = 1\n    def other(self):\n        pass\n";
    assert_eq!(locate_function(sig, "A.run"), Some((2, 5)));
    // What `--site-packages` does with it: the old signature is gone, the function is not.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("socketio/base_manager.py");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, src).unwrap();
    let installed = Installed {
        site_packages: dir.path().to_path_buf(),
        python_version: None,
        stdlib: None,
        dists: [(
            "python-socketio".to_string(),
            Dist {
                name: "python-socketio".into(),
                version: "5.18.1".into(),
                urls: Vec::new(),
            },
        )]
        .into_iter()
        .collect(),
    };
    let old = Step {
        path: "src/socketio/base_manager.py".into(),
        symbol: "BaseManager.connect".into(),
        anchor: "def connect(self, eio_sid, namespace):".into(),
        line_start: 70,
        line_end: 72,
        ..step("x", "y", 1)
    };
    let link = installed.relink(StepLink::new(old, &SourceHost::GitHub, None));
    assert_eq!(
        link.status,
        Some(StepStatus::Function {
            from_start: 70,
            from_end: 72
        })
    );
    assert_eq!((link.step.line_start, link.step.line_end), (7, 9));
    assert!(link.url.ends_with("#L7-L9"), "{}", link.url);

    // A step of some releases only: asked of the installed file, left out where it does
    // not hold, and the built-in answer where the package is not installed at all.
    let only_if = |has: &str, package: &str, builtin: bool| Condition {
        package: package.into(),
        path: "socketio/base_manager.py".into(),
        has: Some(has.into()),
        lacks: None,
        exists: None,
        modes: None,
        builtin,
    };
    let conditional = |c: Condition| Step {
        path: "src/socketio/base_manager.py".into(),
        symbol: "BaseManager.connect".into(),
        anchor: "def connect(self, eio_sid, namespace, sid=None):".into(),
        line_start: 7,
        line_end: 7,
        only_if: Some(c),
        ..step("x", "y", 1)
    };
    let links: Vec<StepLink> = [
        only_if("def connect", "python-socketio", false),
        only_if("def disconnect", "python-socketio", true),
        only_if("anything", "python-engineio", true),
        only_if("anything", "python-engineio", false),
    ]
    .into_iter()
    .map(|c| StepLink::new(conditional(c), &SourceHost::GitHub, None))
    .collect();
    let kept: Vec<bool> = links
        .iter()
        .map(|l| installed.relink(l.clone()).applies())
        .collect();
    assert_eq!(kept, [true, false, true, false]);
    assert_eq!(installed.relink_all(&links).len(), 2);
    let missing = Condition {
        lacks: Some("x".into()),
        has: None,
        ..only_if("", "python-socketio", false)
    };
    assert!(missing.holds(None), "a missing file lacks every text");
    let wants = Condition {
        has: Some(String::new()),
        lacks: None,
        ..only_if("", "python-socketio", false)
    };
    assert!(
        !wants.holds(None),
        "a missing file has no text, not even an empty one"
    );
    assert!(wants.holds(Some("")));
    // A package installed beside the set: the file is there or not.
    let beside = |exists: bool| Condition {
        has: None,
        exists: Some(exists),
        modes: Some(vec!["gevent".into()]),
        ..only_if("", "gevent-websocket", !exists)
    };
    assert!(beside(true).holds(Some("")) && !beside(true).holds(None));
    assert!(beside(false).holds(None) && !beside(false).holds(Some("x")));
    assert!(beside(true).asked_in(AsyncMode::Gevent));
    assert!(!beside(true).asked_in(AsyncMode::Threading));
}

/// With gevent-websocket installed, python-engineio's gevent driver and Flask-SocketIO's run()
/// use it instead of simple-websocket: the links of a gevent server follow gevent-websocket
/// then, and simple-websocket otherwise; a threading server's never change.
#[test]
fn gevent_links_follow_gevent_websocket_where_it_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let with = |gw: bool| {
        let mut dists = std::collections::HashMap::new();
        if gw {
            let file = dir.path().join("geventwebsocket/handler.py");
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, "class WebSocketHandler: pass\n").unwrap();
            dists.insert(
                "gevent-websocket".to_string(),
                Dist {
                    name: "gevent-websocket".into(),
                    version: "0.10.1".into(),
                    urls: Vec::new(),
                },
            );
        }
        Installed {
            site_packages: dir.path().to_path_buf(),
            python_version: None,
            stdlib: None,
            dists,
        }
    };
    let packages = |inst: &Installed, mode, stage, kind| {
        let stack = Stack {
            set: VersionSet::Current,
            mode,
        };
        inst.relink_all(for_event_all(stack, stage, kind))
            .into_iter()
            .map(|l| l.step.package)
            .collect::<Vec<_>>()
    };
    for (stage, kind) in [
        (Stage::WsHandshake, None),
        (Stage::WsFrame, Some(Kind::Text)),
        (Stage::WsFrame, Some(Kind::Send)),
        (Stage::WsMessage, Some(Kind::Close)),
    ] {
        let gw = packages(&with(true), AsyncMode::Gevent, stage, kind);
        assert!(gw.iter().any(|p| p == "gevent-websocket"), "{stage} {gw:?}");
        for other in ["simple-websocket", "wsproto", "h11"] {
            assert!(!gw.iter().any(|p| p == other), "{stage}: {other} in {gw:?}");
        }
        let sw = packages(&with(false), AsyncMode::Gevent, stage, kind);
        assert!(sw.iter().any(|p| p == "simple-websocket"), "{stage} {sw:?}");
        assert!(
            !sw.iter().any(|p| p == "gevent-websocket"),
            "{stage} {sw:?}"
        );
        let threading = packages(&with(true), AsyncMode::Threading, stage, kind);
        assert!(threading.iter().any(|p| p == "simple-websocket"), "{stage}");
        assert!(
            !threading.iter().any(|p| p == "gevent-websocket"),
            "{stage}"
        );
    }
    // The built-in links assume the set installed by itself: simple-websocket.
    let builtin = for_event(
        Stack {
            set: VersionSet::Current,
            mode: AsyncMode::Gevent,
        },
        Stage::WsFrame,
        Some(Kind::Text),
    );
    assert!(!builtin.iter().any(|l| l.step.package == "gevent-websocket"));
}

#[test]
fn links_metadata_and_hosts() {
    let meta = "Metadata-Version: 2.4\nName: python_socketio\nVersion: 5.18.1\nProject-URL: Homepage, https://code.miguelgrinberg.com/miguelgrinberg/python-socketio\nProject-URL: Bug Tracker, https://example.org/issues\n\nbody: text\n";
    let d = parse_metadata(meta).expect("metadata");
    assert_eq!(normalize(&d.name), "python-socketio");
    assert_eq!(d.version, "5.18.1");
    let (host, repo) = source_host(&d, "miguelgrinberg/python-socketio");
    assert_eq!(host, SourceHost::Gitea("code.miguelgrinberg.com".into()));
    let gl = parse_metadata(
        "Name: gevent-websocket\nVersion: 0.10.1\nHome-page: https://www.gitlab.com/noppo/gevent-websocket\n",
    )
    .expect("gevent-websocket");
    let (gl_host, gl_repo) = source_host(&gl, "jgelens/gevent-websocket");
    assert_eq!(gl_host, SourceHost::GitLab("gitlab.com".into()));
    assert_eq!(
        permalink(&gl_host, &gl_repo, "0.10.1", "geventwebsocket/handler.py", 102, 128),
        "https://gitlab.com/noppo/gevent-websocket/-/blob/0.10.1/geventwebsocket/handler.py#L102-128"
    );
    assert_eq!(repo, "miguelgrinberg/python-socketio");
    let gh = parse_metadata("Name: Flask\nVersion: 3.1.3\nProject-URL: Documentation, https://flask.palletsprojects.com/\nProject-URL: Source, https://github.com/pallets/flask/\n").expect("flask");
    assert_eq!(
        source_host(&gh, "pallets/flask"),
        (SourceHost::GitHub, "pallets/flask".to_string())
    );
    assert!(parse_metadata("Name: x\n").is_none());
    let s = step("a", "b", 1);
    assert_eq!(tag_for(&s, "5.18.1"), "v5.18.1");
    let w = Step {
        tag: "3.1.8".into(),
        version: "3.1.8".into(),
        ..s
    };
    assert_eq!(tag_for(&w, "3.1.9"), "3.1.9");
}

/// A packet the server sends links the send path (encode, queue, write), one it receives the
/// receive path (read, decode, dispatch): never the other.
#[test]
fn sent_packets_link_the_send_path_and_received_ones_the_receive_path() {
    const RECEIVE: &[&str] = &[
        "Packet.decode",
        "Server._handle_eio_message",
        "Socket._websocket_handler.websocket_wait",
        "Socket.receive",
        "FrameDecoder.process_buffer",
    ];
    const SEND: &[&str] = &[
        "Manager.emit",
        "Packet.encode",
        "Server._send_eio_packet",
        "FrameProtocol.send_data",
        "FrameProtocol._serialize_frame",
    ];
    const RECEIVED: &[&str] = &["event", "binary_event", "ack", "binary_ack", "message"];
    for set in SETS {
        for stage in Stage::ALL {
            for &kind in stage.kinds() {
                let sent = kind.as_str().ends_with("_sent")
                    || matches!(kind, Kind::Send | Kind::SendCompressed);
                let wrong = if sent {
                    RECEIVE
                } else if RECEIVED.contains(&kind.as_str()) {
                    SEND
                } else {
                    continue;
                };
                for l in for_event(set, stage, Some(kind)) {
                    assert!(
                        !wrong.contains(&l.step.symbol.as_str()),
                        "{set:?} {stage}:{kind} links {} ({}), the other direction's",
                        l.step.symbol,
                        l.step.step_id
                    );
                }
            }
        }
    }
}

#[test]
fn each_async_mode_links_only_its_own_steps_and_every_stage() {
    for set in SETS {
        for mode in AsyncMode::ALL {
            let stack = Stack { set, mode };
            for stage in Stage::ALL {
                if matches!(
                    stage,
                    Stage::TcpData | Stage::Error | Stage::Diagnosis | Stage::App
                ) {
                    continue;
                }
                let kinds = std::iter::once(None).chain(stage.kinds().iter().copied().map(Some));
                for kind in kinds {
                    let links = for_event(stack, stage, kind);
                    assert!(
                        !links.is_empty(),
                        "{set:?} {mode} {stage}:{kind:?} has no steps"
                    );
                    for l in links {
                        assert!(
                            l.step.holds_for(mode),
                            "{set:?} {mode} {stage}:{kind:?} links {} of {:?}",
                            l.step.step_id,
                            l.step.modes
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_server_side_steps_follow_the_async_mode() {
    let packages = |set, mode, stage, kind| -> Vec<String> {
        for_event(Stack { set, mode }, stage, kind)
            .iter()
            .map(|l| l.step.package.clone())
            .collect()
    };
    let server_side = [
        "werkzeug",
        "wsproto",
        "simple-websocket",
        "eventlet",
        "gevent",
    ];
    for set in SETS {
        let accept = packages(set, AsyncMode::Eventlet, Stage::TcpAccept, None);
        assert!(accept.iter().any(|p| p == "eventlet"), "{set:?} {accept:?}");
        assert!(
            !accept.iter().any(|p| p == "werkzeug"),
            "{set:?} {accept:?}"
        );
        let frame = packages(set, AsyncMode::Eventlet, Stage::WsFrame, Some(Kind::Text));
        assert!(frame.iter().any(|p| p == "eventlet"), "{set:?} {frame:?}");
        assert!(!frame
            .iter()
            .any(|p| p == "wsproto" || p == "simple-websocket"));
        let accept = packages(set, AsyncMode::Gevent, Stage::TcpAccept, None);
        assert!(accept.iter().any(|p| p == "gevent"), "{set:?} {accept:?}");
        let threading = packages(set, AsyncMode::Threading, Stage::TcpAccept, None);
        assert!(!threading.iter().any(|p| p == "eventlet" || p == "gevent"));
        // Python-socketio's dispatch is the same code in every mode.
        let dispatch = |mode| {
            packages(set, mode, Stage::SioPacket, Some(Kind::Event))
                .into_iter()
                .filter(|p| !server_side.contains(&p.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(dispatch(AsyncMode::Threading), dispatch(AsyncMode::Gevent));
    }
    // gevent: python-engineio 4.4.1 needs gevent-websocket for WebSocket; 4.13.3 falls back
    // to simple-websocket on greenlets.
    let seed = packages(
        VersionSet::Seed,
        AsyncMode::Gevent,
        Stage::WsFrame,
        Some(Kind::Text),
    );
    assert!(seed.iter().any(|p| p == "gevent-websocket"), "{seed:?}");
    let cur = packages(
        VersionSet::Current,
        AsyncMode::Gevent,
        Stage::WsFrame,
        Some(Kind::Text),
    );
    assert!(cur.iter().any(|p| p == "simple-websocket"), "{cur:?}");
}

#[test]
fn a_mode_step_stands_for_threading_steps_of_its_stage() {
    for set in SETS {
        let raw = parse_chain(
            match set {
                VersionSet::Current => CURRENT_JSON,
                VersionSet::Seed => SEED_JSON,
            },
            "chain",
        )
        .expect("parses");
        for stage in &raw {
            for s in &stage.steps {
                let Some(sf) = &s.stands_for else { continue };
                assert!(!sf.is_empty(), "{} stands for nothing", s.step_id);
                assert!(!s.holds_for(AsyncMode::Threading), "{}", s.step_id);
                for n in sf {
                    let base = stage
                        .steps
                        .iter()
                        .find(|b| b.stands_for.is_none() && b.number() == Some(*n));
                    assert!(
                        base.is_some_and(|b| b.holds_for(AsyncMode::Threading)),
                        "{} stands for {}.{n}, no threading step",
                        s.step_id,
                        stage.stage
                    );
                }
            }
        }
    }
}

#[test]
fn a_string_at_column_zero_does_not_end_a_function() {
    // eventlet 0.41.3's wsgi.server has such a message before its accept loop.
    let src = "def server(sock):\n    if x:\n        raise AttributeError('''\\\nno such thing\n''')\n    while True:\n        client, addr = sock.accept()\n    return 1\n\ndef other():\n    pass\n";
    assert_eq!(locate_function(src, "server"), Some((1, 8)));
    assert_eq!(
        locate(src, &step("server", "client, addr = sock.accept()", 7)),
        Some(7)
    );
    let doc = "class A:\n    def f(self):\n        \"\"\"Doc\n\nat column zero\n\"\"\"\n        return 2\n";
    assert_eq!(locate_function(doc, "A.f"), Some((2, 7)));
    // Non-ASCII inside and outside strings (python-socketio's docstrings have \u{2019}).
    let text = "def g():\n    \"\"\"If the callback isn\u{2019}t\n\u{e9}t\u{e9} \"\"\"\n    x = '\u{2019}'  # \u{2019}\n    return 1\n";
    assert_eq!(locate_function(text, "g"), Some((1, 5)));
}

#[test]
fn eventlet_tags_lost_their_v_at_0_36() {
    use super::site::eventlet_tag;
    assert_eq!(eventlet_tag("0.33.3"), "v0.33.3");
    assert_eq!(eventlet_tag("0.35.2"), "v0.35.2");
    assert_eq!(eventlet_tag("0.36.0"), "0.36.0");
    assert_eq!(eventlet_tag("0.41.3"), "0.41.3");
}
