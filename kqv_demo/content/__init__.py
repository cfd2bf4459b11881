"""The claim bank: YAML under content/, loaded, validated and served to quiz, chat and exports."""
