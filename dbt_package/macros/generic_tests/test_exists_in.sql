{#- Fails for every non-NULL value of the column that is missing from
    `field` of the relation `to` (a foreign key check). Arguments under
    `arguments:` as for unique_combination. -#}
{% test exists_in(model, column_name, to=none, field=none, arguments=none) %}
{%- set to = to if to is not none else arguments['to'] -%}
{%- set field = field if field is not none else arguments['field'] %}
select child.{{ column_name }}
from {{ model }} as child
where child.{{ column_name }} is not null
  and not exists (
      select 1 from {{ to }} as parent
      where parent.{{ field }} = child.{{ column_name }}
  )
{% endtest %}
