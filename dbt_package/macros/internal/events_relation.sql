{#-
  The relation of raw events the package reads:

  - basemodel_events_model: one of your dbt models (e.g. a view that renames
    columns or derives the time), read through ref(), so dbt builds it first;
  - basemodel_events_source: [source_name, table_name] of a source declared
    in your project;
  - otherwise the package's own source `basemodel.events`, a table named by
    basemodel_events_database / _schema / _identifier.

  dbt finds ref() and source() calls while it parses a model, so this macro
  records the dependency as long as the var is set when dbt parses (in
  dbt_project.yml or with --vars), as every var of the package is.
-#}
{% macro events_relation() %}
  {%- set s = basemodel.settings() -%}
  {%- if s.events_model is not none -%}
    {{- return(ref(s.events_model)) -}}
  {%- elif s.events_source is not none -%}
    {{- return(source(s.events_source[0], s.events_source[1])) -}}
  {%- endif -%}
  {{- return(source('basemodel', 'events')) -}}
{% endmacro %}
