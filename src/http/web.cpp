// concur::http::web lands with the web server work.
