// The built-in filters, tests, globals and methods of keel's Jinja subset, and Jinja's rules for
// x.attr and x[key]. Internal to the interpreter (models/jinja.h is the public face). Every
// function throws RenderError (no location; the renderer adds it) for a value of the wrong type.
#pragma once

#include <string>

#include "models/jinja_value.h"

namespace keel::models::jinja {

/// value | name(args): trim, length, tojson, string, upper, lower, default, items, first, last,
/// join, replace, selectattr, rejectattr, select, reject, map, list, ... (see has_filter).
Value call_filter(const std::string& name, const Value& value, const Args& args);
/// value is name(args): defined, none, string, mapping, iterable, equalto, ... (see has_test).
bool call_test(const std::string& name, const Value& value, const Args& args);
/// The global functions: range, namespace, dict, raise_exception, strftime_now; else undefined.
Value global(const std::string& name);

/// obj.name as Jinja resolves it: a method of str / list / dict (startswith, split, items ...),
/// a dict's key or a namespace's attribute; undefined when there is none (and for none.name).
/// Throws for an attribute of an undefined value.
Value get_attr(const Value& obj, const std::string& name);
/// obj[key]: list / str index (negative from the end), dict key; undefined when absent.
Value get_item(const Value& obj, const Value& key);
/// obj[start:stop:step] of a list or str (null Values = omitted), Python semantics.
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
/// The items a for loop visits: a list's items, a dict's keys, a str's characters, nothing for
/// undefined; throws for other types.
Array iterate(const Value& v);
/// Python `item in container`.
bool contains(const Value& container, const Value& item);

}  // namespace keel::models::jinja
