//! The entry points of the student's own code: the four of the course's sample app, and
//! `socketio.run(app)`, where the chain to the server starts.

use super::*;

pub(super) const ENTRIES: [(&str, &str, &str); 5] = [
    (
        "entry:socketio",
        "socketio = SocketIO(app)",
        "Your code: SocketIO(app)",
    ),
    (
        "entry:route",
        "@app.route('/auctions')",
        "Your code: @app.route('/auctions')",
    ),
    (
        "entry:on",
        "@socketio.on('replace old value')",
        "Your code: @socketio.on('replace old value')",
    ),
    (
        "entry:emit",
        "emit('replaced values', message, broadcast=True)",
        "Your code: emit(..., broadcast=True)",
    ),
    (
        "entry:run",
        "socketio.run(app)",
        "Your code: socketio.run(app)",
    ),
];

pub(super) fn entry_sections(ctx: &Ctx) -> Vec<Section> {
    let mut out = Vec::new();
    for (name, line, title) in ENTRIES {
        let Some(sec) = ctx.entry(name) else {
            continue;
        };
        let mut blocks = Vec::new();
        if out.is_empty() {
            blocks.push(text_para("This capture's events are those of the course's auction app (\"replace old value\", \"replaced values\"): these sections show its entry points as its sample report writes them, not lines read from your source. An app may differ (SocketIO(...) with more options, an emit to a room), and a capture cannot tell emit(..., broadcast=True) from an emit to a room or back to the sender when one client is connected: give the report your source (--app) to match your own lines."));
        }
        blocks.extend([
            code("python", format!("{line}\n")),
            para(vec![b(sec.title.clone()), t(format!(". {}", sec.summary))]),
        ]);
        if sec.links.is_empty() {
            blocks.push(text_para("No Python code is linked to this entry point."));
        } else {
            blocks.push(text_para("The chain, numbered:"));
            blocks.push(link_list(&sec.links));
        }
        out.push(Section {
            title: title.to_string(),
            blocks,
        });
    }
    out
}
