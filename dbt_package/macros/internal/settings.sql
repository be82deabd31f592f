{#-
  The package configuration: every `basemodel_*` var read, defaulted and
  validated in this one place. Models call basemodel.settings() and never
  var() directly, so a misspelt or malformed setting fails at compile time
  with a message that says what to write instead.
-#}
{% macro settings() %}
  {%- set fail = exceptions.raise_compiler_error -%}

  {#- Item columns: a name, or {name: output_name, column: sql_expression}. -#}
  {%- set raw_items = var('basemodel_item_columns', ['item_id']) -%}
  {%- if raw_items is string or raw_items is mapping -%}{%- set raw_items = [raw_items] -%}{%- endif -%}
  {%- if raw_items | length == 0 -%}
    {%- do fail("basemodel: `basemodel_item_columns` is empty; list at least one item column, e.g. ['product_id', 'category'].") -%}
  {%- endif -%}
  {%- set items = [] -%}
  {%- for item in raw_items -%}
    {%- if item is mapping -%}
      {%- if 'name' not in item or 'column' not in item -%}
        {%- do fail("basemodel: an entry of `basemodel_item_columns` given as a mapping needs both `name` (output name) and `column` (source column or SQL expression); got " ~ item) -%}
      {%- endif -%}
      {%- set entry = {'name': item['name'] | string, 'column': item['column'] | string} -%}
    {%- else -%}
      {%- set entry = {'name': item | string, 'column': item | string} -%}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_]*', entry['name']) -%}
      {%- do fail("basemodel: item column name '" ~ entry['name'] ~ "' is not a plain identifier; give it as {name: my_name, column: '\"" ~ entry['name'] ~ "\"'}.") -%}
    {%- endif -%}
    {%- do entry.update({'name': entry['name'] | lower}) -%}
    {%- do items.append(entry) -%}
  {%- endfor -%}
  {%- set names = items | map(attribute='name') | list -%}
  {%- set reserved = ['event_id', 'entity_id', 'event_at', 'event_type', 'group_id', 'amount', 'loaded_at', 'rejection_reason', 'source_row_id'] -%}
  {%- for name in names -%}
    {%- if name in reserved or names.count(name) > 1 -%}
      {%- do fail("basemodel: item column name '" ~ name ~ "' is duplicated or clashes with a column the package creates (" ~ reserved | join(', ') ~ "); rename it with {name: ..., column: ...}.") -%}
    {%- endif -%}
  {%- endfor -%}

  {%- set passthrough = var('basemodel_passthrough_columns', []) -%}
  {%- if passthrough is string -%}{%- set passthrough = [passthrough] -%}{%- endif -%}

  {%- set decay_rate = var('basemodel_decay_rate', 0.01) -%}
  {%- if decay_rate is not number or decay_rate < 0 -%}
    {%- do fail("basemodel: `basemodel_decay_rate` must be a number >= 0 (per day; weight = exp(-rate * days before the split)); got " ~ decay_rate) -%}
  {%- endif -%}
  {%- set horizon_days = var('basemodel_horizon_days', 30) -%}
  {%- if horizon_days is not number or horizon_days <= 0 or horizon_days != horizon_days | int -%}
    {%- do fail("basemodel: `basemodel_horizon_days` must be a positive whole number of days; got " ~ horizon_days) -%}
  {%- endif -%}
  {%- set history_days = var('basemodel_history_days', none) -%}
  {%- if history_days is not none and (history_days is not number or history_days <= 0) -%}
    {%- do fail("basemodel: `basemodel_history_days` must be a positive number of days, or null for all history; got " ~ history_days) -%}
  {%- endif -%}
  {%- set lookback = var('basemodel_incremental_lookback_days', 3) -%}
  {%- if lookback is not number or lookback < 0 -%}
    {%- do fail("basemodel: `basemodel_incremental_lookback_days` must be a number >= 0; got " ~ lookback) -%}
  {%- endif -%}

  {%- set event_types = var('basemodel_propensity_event_types', []) -%}
  {%- if event_types is string -%}{%- set event_types = [event_types] -%}{%- endif -%}
  {%- set item_values = var('basemodel_propensity_items', {}) -%}
  {%- if item_values is not mapping -%}
    {%- do fail("basemodel: `basemodel_propensity_items` must map an item column name to a list of values, e.g. {category: [books, toys]}; got " ~ item_values) -%}
  {%- endif -%}
  {%- set propensity = [] -%}
  {%- for event_type in event_types -%}
    {%- do propensity.append({'column': 'propensity_' ~ basemodel.sql_name(event_type),
                              'event_type': event_type | string, 'item': none, 'value': none}) -%}
  {%- endfor -%}
  {%- for item_name, values in item_values.items() -%}
    {%- if (item_name | lower) not in names -%}
      {%- do fail("basemodel: `basemodel_propensity_items` names '" ~ item_name ~ "', which is not one of the item columns " ~ names) -%}
    {%- endif -%}
    {%- for value in ([values] if values is string else values) -%}
      {%- do propensity.append({'column': 'propensity_' ~ (item_name | lower) ~ '_' ~ basemodel.sql_name(value),
                                'event_type': none, 'item': item_name | lower, 'value': value | string}) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- set label_columns = propensity | map(attribute='column') | list -%}
  {%- for column in label_columns -%}
    {%- if label_columns.count(column) > 1 -%}
      {%- do fail("basemodel: two propensity labels map to the same column name '" ~ column ~ "'; their values differ only in punctuation or case.") -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set item_event_types = var('basemodel_propensity_item_event_types', none) -%}
  {%- if item_event_types is string -%}{%- set item_event_types = [item_event_types] -%}{%- endif -%}

  {#- The events relation: the user's own model, a source of theirs, or the
      package's source over basemodel_events_database/_schema/_identifier. -#}
  {%- set events_model = var('basemodel_events_model', none) -%}
  {%- set events_source = var('basemodel_events_source', none) -%}
  {%- if events_model is not none and (events_model is not string or events_model | trim == '') -%}
    {%- do fail("basemodel: `basemodel_events_model` must name one of your dbt models, e.g. stg_orders; got " ~ events_model) -%}
  {%- endif -%}
  {%- if events_source is not none and (events_source is string or events_source is mapping
                                        or events_source | length != 2) -%}
    {%- do fail("basemodel: `basemodel_events_source` must be [source_name, table_name] of a source in your project, e.g. [shop, orders]; got " ~ events_source) -%}
  {%- endif -%}
  {%- if events_model is not none and events_source is not none -%}
    {%- do fail("basemodel: set only one of `basemodel_events_model` (your dbt model) and `basemodel_events_source` (your source); both are set.") -%}
  {%- endif -%}

  {#- How the time is given. -#}
  {%- set time_formats = ['iso', 'epoch_s', 'epoch_ms', 'date', 'pattern', 'sql'] -%}
  {%- set time_pattern = var('basemodel_time_pattern', none) -%}
  {%- set time_expression = var('basemodel_time_expression', none) -%}
  {%- set time_format = var('basemodel_time_format', 'pattern' if time_pattern is not none else 'iso') -%}
  {%- if time_format not in time_formats -%}
    {%- do fail("basemodel: `basemodel_time_format` must be one of " ~ time_formats | join(', ') ~ "; got " ~ time_format) -%}
  {%- endif -%}
  {%- if (time_format == 'pattern') != (time_pattern is not none) -%}
    {%- do fail("basemodel: `basemodel_time_pattern` (a strftime pattern such as '%d/%m/%Y %H:%M') goes with `basemodel_time_format: pattern`, and only with it; got format " ~ time_format ~ " and pattern " ~ time_pattern) -%}
  {%- endif -%}
  {%- if (time_format == 'sql') != (time_expression is not none and time_expression | string | trim != '') -%}
    {%- do fail("basemodel: `basemodel_time_expression` (an SQL expression over the source columns, e.g. \"cast('2000-01-01' as date) + day_number\") goes with `basemodel_time_format: sql`, and only with it; got format " ~ time_format) -%}
  {%- endif -%}

  {#- Hyperedges by time gap, churn population, as-of cut-off. -#}
  {%- set session_gap = var('basemodel_session_gap_minutes', none) -%}
  {%- if session_gap is not none and (session_gap is not number or session_gap <= 0) -%}
    {%- do fail("basemodel: `basemodel_session_gap_minutes` must be a positive number of minutes (a longer pause between two events of a customer starts a new session), or null; got " ~ session_gap) -%}
  {%- endif -%}
  {%- set active_days = var('basemodel_active_days', 90) -%}
  {%- if active_days is not none and (active_days is not number or active_days <= 0) -%}
    {%- do fail("basemodel: `basemodel_active_days` must be a positive number of days (only customers with an event that recent before a cut-off get a churn label), or null for every customer; got " ~ active_days) -%}
  {%- endif -%}
  {%- set as_of = var('basemodel_as_of', none) -%}
  {%- if as_of is not none and (as_of | string | trim | lower) != 'now' -%}
    {%- set as_of = basemodel.parse_time_var('basemodel_as_of', as_of) -%}
  {%- elif as_of is not none -%}
    {%- set as_of = 'now' -%}
  {%- endif -%}

  {%- do return({
      'entity_column': var('basemodel_entity_column', 'entity_id'),
      'timestamp_column': var('basemodel_timestamp_column', 'event_time'),
      'event_type_column': var('basemodel_event_type_column', none),
      'default_event_type': var('basemodel_default_event_type', 'event') | string,
      'item_columns': items,
      'group_column': var('basemodel_group_column', none),
      'amount_column': var('basemodel_amount_column', none),
      'event_id_column': var('basemodel_event_id_column', none),
      'loaded_at_column': var('basemodel_loaded_at_column', none),
      'passthrough_columns': passthrough,
      'dedup_order_by': var('basemodel_dedup_order_by', none),
      'valid_from': basemodel.parse_time_var('basemodel_valid_from', var('basemodel_valid_from', none)),
      'valid_to': basemodel.parse_time_var('basemodel_valid_to', var('basemodel_valid_to', none)),
      'horizon_days': horizon_days | int,
      'decay_rate': decay_rate,
      'history_days': history_days,
      'propensity_labels': propensity,
      'propensity_item_event_types': item_event_types,
      'incremental': var('basemodel_incremental', false),
      'incremental_lookback_days': lookback,
      'sketch_item_column': (var('basemodel_sketch_item_column', names[0]) | lower),
      'sketch_dim': var('basemodel_sketch_dim', none),
      'sketch_use_decay': var('basemodel_sketch_use_decay', true),
      'events_model': events_model,
      'events_source': events_source,
      'time_format': time_format,
      'time_pattern': (basemodel.time_pattern(time_pattern) if time_pattern is not none else none),
      'time_expression': time_expression,
      'session_gap_minutes': session_gap,
      'active_days': active_days,
      'as_of': as_of,
  }) -%}
{% endmacro %}
