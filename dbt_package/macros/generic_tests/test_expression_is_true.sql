{#- Fails for every row where the SQL `expression` is not true (false or
    NULL). Arguments under `arguments:` as for unique_combination. -#}
{% test expression_is_true(model, expression=none, arguments=none, column_name=none) %}
{%- set expression = expression if expression is not none else arguments['expression'] %}
select *
from {{ model }}
where not coalesce({{ expression }}, false)
{% endtest %}
