{#- The EMDE sketch of every history in SQL (one row per split, entity and
    non-zero position), from item codes that
    sklearn_basemodel.warehouse.write_entity_codes wrote into the warehouse.
    Enabled only when basemodel_sketch_codes_identifier names that table. -#}
{{ config(enabled=(var('basemodel_sketch_codes_identifier', none) is not none)) }}
{%- set s = basemodel.settings() -%}
{%- if s.sketch_item_column not in (s.item_columns | map(attribute='name') | list) -%}
  {%- do exceptions.raise_compiler_error("basemodel: `basemodel_sketch_item_column` '" ~ s.sketch_item_column ~ "' is not one of the item columns " ~ (s.item_columns | map(attribute='name') | list)) -%}
{%- endif -%}
{%- set codes = api.Relation.create(
    database=var('basemodel_sketch_codes_database', target.get('database')),
    schema=var('basemodel_sketch_codes_schema', target.schema),
    identifier=var('basemodel_sketch_codes_identifier')) %}

{{ basemodel.emde_sketch(
    rows=ref('basemodel_history_events'),
    codes=codes,
    row_columns=['split_id', 'split_at', 'entity_id'],
    key_column=s.sketch_item_column,
    sketch_dim=s.sketch_dim,
    weight_column=('decay_weight' if s.sketch_use_decay else none),
) }}
