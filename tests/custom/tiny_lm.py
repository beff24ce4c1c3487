"""Lightning's own demo language model (lightning.pytorch.demos.LightningLSTM), as a user
would bring it: subclassed to take small hyperparameters (lr included), to read a small local
text in place of WikiText2's download, and to log a validation loss. It keeps its own
dataloaders and no `example_input_array`. Its vocabulary is a hyperparameter, so it travels with
the checkpoint. Its validation step and predict call its forward, so an ensemble averages
its members. The tests copy this file into a folder that is not on sys.path."""

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.demos import LightningLSTM
from lightning.pytorch.demos.lstm import SequenceSampler, SimpleLSTM
from lightning.pytorch.demos.transformer import WikiText2
from torch.utils.data import DataLoader, Subset


def text() -> WikiText2:
    return WikiText2(Path(__file__).parent, block_size=8, download=False)


class TinyLM(LightningLSTM):
    def __init__(self, ninp: int = 16, nhid: int = 16, nlayers: int = 1, lr: float = 5.0,
                 vocabulary: str = ""):  # fmt: skip
        words = vocabulary.split(" ") if vocabulary else text().dictionary.idx2word
        super().__init__(len(words))
        self.save_hyperparameters()
        self.hparams.vocabulary = " ".join(words)
        self.model = SimpleLSTM(len(words), ninp, nhid, nlayers, dropout=0.0)

    def prepare_data(self) -> None:
        pass  # the text is local: nothing to download

    def train_dataloader(self) -> DataLoader:
        blocks = text()
        train = Subset(blocks, range(int(len(blocks) * 0.8)))
        return DataLoader(train, batch_sampler=SequenceSampler(train, batch_size=4))

    def val_dataloader(self) -> DataLoader:
        blocks = text()
        return DataLoader(Subset(blocks, range(int(len(blocks) * 0.8), len(blocks))), 8)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each position's next-word log-probabilities, from a fresh state."""
        return self.model(inputs, self.model.init_hidden(inputs.size(0)))[0]

    def validation_step(self, batch, batch_idx):
        inputs, target = batch
        self.log("val_loss", F.nll_loss(self(inputs), target.view(-1)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


MODEL = TinyLM
EXAMPLE = pd.DataFrame({"prompt": ["the cat"]})


def predict(model: TinyLM, frame: pd.DataFrame) -> pd.DataFrame:
    """The most likely next word of each prompt."""
    words = model.hparams.vocabulary.split(" ")
    index = {word: k for k, word in enumerate(words)}
    found = []
    for prompt in frame["prompt"]:
        ids = torch.tensor([[index[word] for word in prompt.split()]])
        with torch.no_grad():
            output = model(ids)
        found.append(words[int(output[-1].argmax())])
    return pd.DataFrame({"next_word": found})
