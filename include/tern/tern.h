/* SPDX-License-Identifier: MIT */
/** @file tern.h  The whole public API of libtern. */
#ifndef TERN_H
#define TERN_H

#include <tern/actor.h>
#include <tern/common.h>
#include <tern/error.h>
#include <tern/runtime.h>
#include <tern/server.h>
#include <tern/socket.h>
#include <tern/ssl.h>
#include <tern/ssl_config.h>
#include <tern/ssl_error.h>
#include <tern/certificate.h>
#include <tern/psk.h>
#include <tern/session.h>
#include <tern/stats.h>
#include <tern/version.h>

#endif
