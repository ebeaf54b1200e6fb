"""Agent.config_mode: agents that existed before the gateway keep handing out direct configs
(what their clients already use); agents created from now on default to the gateway."""

from django.db import migrations, models

CHOICES = [
    ("direct", "direct: one entry per upstream, with its credentials"),
    ("gateway", "gateway: one entry, the agent's gateway endpoint and key"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("servers", "0008_collection_names"),
    ]

    operations = [
        # Existing rows are filled with "direct"; the model's default for new rows is "gateway".
        migrations.AddField(
            model_name="agent",
            name="config_mode",
            field=models.CharField(choices=CHOICES, default="direct", max_length=16),
        ),
        migrations.AlterField(
            model_name="agent",
            name="config_mode",
            field=models.CharField(choices=CHOICES, default="gateway", max_length=16),
        ),
    ]
