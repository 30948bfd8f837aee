//! End-to-end tests: the real server over HTTP, on SQLite, or on PostgreSQL when
//! RAPPORT_TEST_DATABASE_URL is set.

mod activities;
mod approvals;
mod auth;
mod authority;
mod bad_input;
mod cli;
mod connect;
mod console;
mod crm_tools;
mod data;
mod deals;
mod duplicates;
mod filters;
mod group_commit;
mod helpers;
mod isolation;
mod leads;
mod lean_path;
mod lifecycle;
mod logs;
mod mcp_protocol;
mod migrations;
mod openapi;
mod oversight;
mod paging;
mod profiles;
mod records;
mod rest;
mod scale;
mod store_contract;
mod surface;
mod webhooks;
