//! An HTTP answer as the server means it: status, headers, body. `http.rs` writes it in the
//! style of the server dispel mimics (for Werkzeug: `Server` and `Date` first, a body without a
//! length sent chunked, one request per connection).

pub struct Reply {
    pub status: u16,
    /// The reason phrase as the server writes it (python-engineio: `BAD REQUEST`).
    pub reason: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// No Content-Length: Werkzeug sends the body chunked (a WSGI answer that gives no length,
    /// as every python-engineio answer).
    pub chunked: bool,
}

impl Reply {
    pub fn new(
        status: u16,
        reason: &'static str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        Reply {
            status,
            reason,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
            chunked: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }

    /// Werkzeug's page for an exception the application did not catch (a 500).
    pub fn werkzeug_internal_error() -> Reply {
        Reply::new(
            500,
            "INTERNAL SERVER ERROR",
            "text/html; charset=utf-8",
            WERKZEUG_500,
        )
    }

    /// Werkzeug's page for a URL no route matches (a 404).
    pub fn werkzeug_not_found() -> Reply {
        Reply::new(404, "NOT FOUND", "text/html; charset=utf-8", WERKZEUG_404)
    }
}

/// The HTML Werkzeug 3.1 sends for an uncaught exception (`InternalServerError`), as observed.
const WERKZEUG_500: &str = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.</p>\n";

/// The HTML Werkzeug 3.1 sends for `NotFound`, as observed.
const WERKZEUG_404: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n";
