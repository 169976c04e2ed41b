#pragma once
/// \file concur::http — aiohttp and requests for C++: the asynchronous ClientSession, the
/// blocking Session, and the web server (concur::http::web).
#include "concur/http/client.hpp"   // IWYU pragma: export
#include "concur/http/common.hpp"   // IWYU pragma: export
#include "concur/http/session.hpp"  // IWYU pragma: export
#if __has_include("concur/http/web.hpp")
#include "concur/http/web.hpp"  // IWYU pragma: export
#endif
