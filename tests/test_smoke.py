from modfit import Experiment, ModelConfig, TrainConfig, run
from modfit.config import AttackConfig


def test_tiny_models_train_end_to_end(tiny_bert, tiny_roberta, text_dataset):
    for folder in (tiny_bert, tiny_roberta):
        experiment = Experiment(
            dataset=str(text_dataset),
            attack=AttackConfig(name="badnet", rate=0.1),
            model=ModelConfig(name=str(folder), pooling="mean"),
            train=TrainConfig(epochs=1, lr=1e-3, batch_size=8, eval_every=4),
        )
        result = run(experiment, progress=False)
        assert [p.step for p in result.history] == [0, 4, 8]
