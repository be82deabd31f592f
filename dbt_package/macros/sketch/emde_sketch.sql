{#-
  EMDE sketches aggregated in SQL: one row per (row, position) with
  value = the sum of the weights of the row's items coded to that position,
  where position = partitioning * sketch_dim + bucket is the column of
  EMDESketcher.transform(..., normalize=None)'s output. Items missing from the
  codes table are ignored (as EMDESketcher does with unknown entities);
  positions that no item reaches are absent (the sketch is sparse).

  rows:          relation or CTE with one row per (row, item[, weight])
  codes:         relation written by sklearn_basemodel.warehouse.write_entity_codes:
                 (entity_key, partitioning, bucket, position), one row per key and partitioning
  row_columns:   column(s) identifying a row, e.g. ['split_id', 'entity_id']
  key_column:    the item column of `rows`
  weight_column: the weight column of `rows`; none counts each item once
  sketch_dim:    none reads the codes' `position` column; a number computes
                 partitioning * sketch_dim + bucket (for codes tables without positions)
  Keys are compared as text, so integer keys written from Python match text
  item columns.
-#}
{% macro emde_sketch(rows, codes, row_columns, key_column, weight_column=none, sketch_dim=none,
                     codes_key_column='entity_key', position_column='position',
                     partitioning_column='partitioning', bucket_column='bucket') -%}
  {%- set row_columns = [row_columns] if row_columns is string else row_columns -%}
  {%- if sketch_dim is none -%}
    {%- set position = 'codes.' ~ position_column -%}
  {%- elif sketch_dim is number and sketch_dim >= 1 -%}
    {%- set position = 'codes.' ~ partitioning_column ~ ' * ' ~ (sketch_dim | int) ~ ' + codes.' ~ bucket_column -%}
  {%- else -%}
    {%- do exceptions.raise_compiler_error("basemodel.emde_sketch: sketch_dim must be none (use the codes' position column) or a positive integer (EMDESketcher.sketch_dim); got " ~ sketch_dim) -%}
  {%- endif -%}
  {%- set string = dbt.type_string() -%}
  {%- set weight = ('coalesce(sketch_rows.' ~ weight_column ~ ', 0)') if weight_column else '1' %}
select
    {%- for column in row_columns %}
    sketch_rows.{{ column }},
    {%- endfor %}
    cast({{ position }} as {{ dbt.type_bigint() }}) as position,
    cast(sum({{ weight }}) as {{ basemodel.type_double() }}) as value
from {{ rows }} as sketch_rows
inner join {{ codes }} as codes
    on cast(sketch_rows.{{ key_column }} as {{ string }}) = cast(codes.{{ codes_key_column }} as {{ string }})
group by
    {%- for column in row_columns %}
    sketch_rows.{{ column }},
    {%- endfor %}
    {{ position }}
{%- endmacro %}
